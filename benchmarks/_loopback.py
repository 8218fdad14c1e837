"""Scenario 3: requests per second against a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx
from opentelemetry.instrumentation.httpx import (
    AsyncOpenTelemetryTransport,
    SyncOpenTelemetryTransport,
)
from prometheus_client import CollectorRegistry

from flowscope import AsyncFlowScopeTransport, FlowMetrics, FlowScopeTransport

from ._common import (
    LAUNCH_BODY,
    LAUNCH_PATH,
    REQUEST_HEADERS,
    ROOT,
    child_env,
    clock,
    interleaved,
    paired_ratio,
    traced_provider,
)
from ._report import Section, Table, ratio


@contextmanager
def loopback_server() -> Iterator[str]:
    """The benchmark server in a child process; yields its base URL and always stops it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks._server"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env=child_env(),
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


KINDS = ["bare httpx", "OTel httpx transport", "flowscope"]


def _transport(kind: str, is_async: bool) -> Any:
    inner: Any = httpx.AsyncHTTPTransport() if is_async else httpx.HTTPTransport()
    if kind == "bare httpx":
        return inner
    if kind == "OTel httpx transport":
        cls: Any = AsyncOpenTelemetryTransport if is_async else SyncOpenTelemetryTransport
        return cls(inner, tracer_provider=traced_provider())
    fcls: Any = AsyncFlowScopeTransport if is_async else FlowScopeTransport
    return fcls(inner, tracer_provider=traced_provider(), metrics=FlowMetrics(CollectorRegistry()))


def throughput(*, rounds: int, batch: int, threads: int = 4, concurrency: int = 16) -> Section:
    body = json.dumps(LAUNCH_BODY).encode()
    section = Section(
        "3. Loopback throughput",
        "Launches against a minimal asyncio HTTP/1.1 server in a separate process on "
        f"127.0.0.1 (keep-alive; {batch} requests per round, {rounds} interleaved rounds). "
        "Traced contenders use an SDK `TracerProvider` that samples every span.",
    )
    with loopback_server() as base:
        url = base + LAUNCH_PATH
        for mode in ("sync, 1 thread", f"sync, {threads} threads", f"async, {concurrency} tasks"):
            is_async = mode.startswith("async")
            loop = asyncio.Runner() if is_async else None
            pool = ThreadPoolExecutor(threads) if "threads" in mode else None
            clients: list[Any] = []
            runners: dict[str, Callable[[int], float]] = {}
            try:
                for kind in KINDS:
                    transport = _transport(kind, is_async)
                    if is_async:
                        client: Any = httpx.AsyncClient(transport=transport)
                        runners[kind] = _async_runner(client, url, body, loop, concurrency)  # type: ignore[arg-type]
                    else:
                        client = httpx.Client(transport=transport)
                        runners[kind] = _sync_runner(client, url, body, pool, threads)
                    clients.append(client)
                    runners[kind](max(batch // 4, 8))  # warm-up: connections, caches
                timings = interleaved(runners, rounds=rounds, batch=batch)
            finally:
                for client in clients:
                    if is_async:
                        assert loop is not None
                        loop.run(client.aclose())
                    else:
                        client.close()
                if loop is not None:
                    loop.close()
                if pool is not None:
                    pool.shutdown()
            table = Table(["contender", "median req/s", "vs bare httpx"], title=mode)
            for name, t in timings.items():
                rel = (
                    "—"
                    if name == "bare httpx"
                    else ratio(1 / paired_ratio(timings, name, "bare httpx"))
                )
                table.rows.append([name, f"{1 / t.median:,.0f}", rel])
            section.tables.append(table)
            r = 1 / paired_ratio(timings, "flowscope", "bare httpx")
            r_otel = 1 / paired_ratio(timings, "flowscope", "OTel httpx transport")
            section.notes.append(
                f"{mode}: flowscope keeps {r:.0%} of bare httpx's throughput and "
                f"{r_otel:.0%} of the OpenTelemetry transport's."
            )
    section.notes.append("No throughput target is set; the figures size the real-network cost.")
    return section


def _sync_runner(
    client: httpx.Client, url: str, body: bytes, pool: ThreadPoolExecutor | None, threads: int
) -> Callable[[int], float]:
    def work(n: int) -> None:
        for _ in range(n):
            r = client.post(url, content=body, headers=REQUEST_HEADERS)
            assert r.status_code == 200, r.status_code

    def run(n: int) -> float:
        t0 = clock()
        if pool is None:
            work(n)
        else:
            share = [n // threads + (1 if i < n % threads else 0) for i in range(threads)]
            for f in [pool.submit(work, k) for k in share]:
                f.result()
        return clock() - t0

    return run


def _async_runner(
    client: httpx.AsyncClient, url: str, body: bytes, loop: asyncio.Runner, concurrency: int
) -> Callable[[int], float]:
    async def work(n: int) -> None:
        for _ in range(n):
            r = await client.post(url, content=body, headers=REQUEST_HEADERS)
            assert r.status_code == 200, r.status_code

    async def batch(n: int) -> float:
        share = [n // concurrency + (1 if i < n % concurrency else 0) for i in range(concurrency)]
        t0 = clock()
        await asyncio.gather(*(work(k) for k in share))
        return clock() - t0

    return lambda n: loop.run(batch(n))
