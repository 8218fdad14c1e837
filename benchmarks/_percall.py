"""Scenarios 1 and 2: the per-call cost on the success and the error path, over MockTransport.

MockTransport answers in microseconds, so what is measured is the instrumentation itself: the
span, the attribute work, the capture, parse and redaction, the metrics.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from opentelemetry.instrumentation.httpx import (
    AsyncOpenTelemetryTransport,
    SyncOpenTelemetryTransport,
)
from prometheus_client import CollectorRegistry

from flowscope import AsyncFlowScopeTransport, FlowMetrics, FlowScopeTransport

from ._common import (
    API,
    BAD_LAUNCH_BODY,
    CORRELATION_ID,
    ERROR_HEADERS,
    LAUNCH_BODY,
    LAUNCH_PATH,
    LAUNCH_REPLY,
    REQUEST_HEADERS,
    CountingProcessor,
    Timings,
    clock,
    genesys_error_body,
    interleaved,
    paired_ratio,
    sampled_out_provider,
    traced_provider,
)
from ._report import Section, Table, Target, ratio, us

URL = API + LAUNCH_PATH
ERROR_BODY = genesys_error_body()
_SUCCESS_BYTES = json.dumps(LAUNCH_REPLY).encode()


_SUCCESS_HEADERS = {
    "Content-Type": "application/json",
    "Content-Length": str(len(_SUCCESS_BYTES)),
    "ININ-Correlation-Id": CORRELATION_ID,
}
_ERROR_HEADERS = {**ERROR_HEADERS, "Content-Length": str(len(ERROR_BODY))}


# Unread streams, as a network transport returns them (a Response built with `content=` is
# already read, and instrumentations that hook the read would see nothing).
def _success(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, stream=httpx.ByteStream(_SUCCESS_BYTES), headers=_SUCCESS_HEADERS)


# Every real error has its own contextId (and correlation id): cycle through distinct bodies,
# so no cache of recently seen strings makes the error path look cheaper than it is.
_ERRORS = [
    (body, {**_ERROR_HEADERS, "ININ-Correlation-Id": cid, "Content-Length": str(len(body))})
    for cid in (str(uuid.UUID(int=i + 1)) for i in range(1024))
    for body in [genesys_error_body(context_id=cid)]
]
_next_error = itertools.cycle(_ERRORS).__next__


def _error(request: httpx.Request) -> httpx.Response:
    body, headers = _next_error()
    return httpx.Response(400, stream=httpx.ByteStream(body), headers=headers)


@dataclass
class Contender:
    """One client set up one way; ``check`` proves the set-up does what its name says."""

    name: str
    client: httpx.Client | httpx.AsyncClient
    processor: CountingProcessor | None = None
    metrics: FlowMetrics | None = None
    calls: int = 0


def _logfire() -> Any | None:
    try:
        import logfire
    except ImportError:
        return None
    return logfire


def _logfire_instance(processor: CountingProcessor) -> Any:
    """A Logfire of its own: nothing sent, nothing printed, its own tracer provider."""
    logfire = _logfire()
    assert logfire is not None
    return logfire.configure(
        local=True,
        send_to_logfire=False,
        console=False,
        metrics=False,
        inspect_arguments=False,
        additional_span_processors=[processor],
    )


def _contenders(
    handler: Callable[[httpx.Request], httpx.Response], *, is_async: bool, kinds: list[str]
) -> list[Contender]:
    out: list[Contender] = []
    for kind in kinds:
        # One transport each: Logfire instruments a client by patching its transport in place.
        mock = httpx.MockTransport(handler)
        proc = CountingProcessor()
        if kind == "bare httpx":
            transport: Any = mock
            out.append(Contender(kind, _client(transport, is_async)))
        elif kind in ("OTel httpx transport", "OTel httpx transport, sampled out"):
            cls: Any = AsyncOpenTelemetryTransport if is_async else SyncOpenTelemetryTransport
            sampled = kind == "OTel httpx transport"
            provider = traced_provider(proc) if sampled else sampled_out_provider()
            transport = cls(mock, tracer_provider=provider)
            out.append(Contender(kind, _client(transport, is_async), proc if sampled else None))
        elif kind in ("flowscope", "flowscope, traces sampled out"):
            metrics = FlowMetrics(CollectorRegistry())
            provider = traced_provider(proc) if kind == "flowscope" else sampled_out_provider()
            fcls: Any = AsyncFlowScopeTransport if is_async else FlowScopeTransport
            transport = fcls(mock, tracer_provider=provider, metrics=metrics)
            processor = proc if kind == "flowscope" else None
            out.append(Contender(kind, _client(transport, is_async), processor, metrics))
        elif kind == "Logfire capture_all":
            client = _client(mock, is_async)
            _logfire_instance(proc).instrument_httpx(client, capture_all=True)
            out.append(Contender(kind, client, proc))
        else:  # pragma: no cover
            raise ValueError(kind)
    return out


def _client(transport: Any, is_async: bool) -> httpx.Client | httpx.AsyncClient:
    return httpx.AsyncClient(transport=transport) if is_async else httpx.Client(transport=transport)


def _sync_runner(
    c: Contender, body: bytes, status: int, *, clock: Callable[[], float] = clock
) -> Callable[[int], float]:
    client = c.client
    assert isinstance(client, httpx.Client)
    post = client.post

    def run(n: int) -> float:
        t0 = clock()
        for _ in range(n):
            response = post(URL, content=body, headers=REQUEST_HEADERS)
        elapsed = clock() - t0
        assert response.status_code == status
        c.calls += n
        return elapsed

    return run


def _async_runner(
    c: Contender,
    body: bytes,
    status: int,
    loop: asyncio.Runner,
    *,
    clock: Callable[[], float] = clock,
) -> Callable[[int], float]:
    client = c.client
    assert isinstance(client, httpx.AsyncClient)
    post = client.post

    async def batch(n: int) -> float:
        t0 = clock()
        for _ in range(n):
            response = await post(URL, content=body, headers=REQUEST_HEADERS)
        elapsed = clock() - t0
        assert response.status_code == status
        return elapsed

    def run(n: int) -> float:
        elapsed = loop.run(batch(n))
        c.calls += n
        return elapsed

    return run


def _check(c: Contender, status: int) -> None:
    """Each contender does what it claims, checked on the last call of the warm-up."""
    proc = c.processor
    if proc is not None:
        assert proc.ended > 0, f"{c.name}: no span ended"
    if c.name == "flowscope":
        assert proc is not None and proc.last is not None
        attrs = proc.last.attributes or {}
        assert attrs.get("flow.operation") == "launch", attrs
        if status >= 400:
            events = {e.name for e in proc.last.events}
            assert {"flow.error.body", "flow.request.body", "flow.hint"} <= events, events
            assert attrs.get("flow.error.code") == "bad.request", attrs
    if c.name == "OTel httpx transport":
        assert proc is not None and proc.last is not None
        assert "url.full" in (proc.last.attributes or {}), "stable semconv not in effect"
    if c.name == "Logfire capture_all":
        assert proc is not None
        seen = proc.attribute_names
        assert "http.response.body.text" in seen, sorted(seen)


@contextmanager
def _closing(contenders: list[Contender], loop: asyncio.Runner | None) -> Iterator[None]:
    try:
        yield
    finally:
        for c in contenders:
            if isinstance(c.client, httpx.AsyncClient):
                assert loop is not None
                loop.run(c.client.aclose())
            else:
                c.client.close()


def _measure(
    kinds: list[str],
    handler: Callable[[httpx.Request], httpx.Response],
    body: bytes,
    status: int,
    *,
    is_async: bool,
    rounds: int,
    batch: int,
) -> tuple[dict[str, Timings], list[Contender]]:
    contenders = _contenders(handler, is_async=is_async, kinds=kinds)
    loop = asyncio.Runner() if is_async else None
    try:
        with _closing(contenders, loop):
            runners = {
                c.name: (
                    _async_runner(c, body, status, loop)
                    if loop is not None
                    else _sync_runner(c, body, status)
                )
                for c in contenders
            }
            for c in contenders:  # warm-up: imports, caches, first-call paths
                if c.processor is not None:
                    c.processor.keep_attributes = True
                runners[c.name](max(batch // 4, 5))
                _check(c, status)
                if c.processor is not None:
                    c.processor.keep_attributes = False
            timings = interleaved(runners, rounds=rounds, batch=batch)
            for c in contenders:
                if c.metrics is not None:
                    counted = c.metrics.registry.get_sample_value(
                        "flowscope_requests_total",
                        {
                            "flow": LAUNCH_BODY["flowId"],  # type: ignore[dict-item]
                            "operation": "launch",
                            "method": "POST",
                            "status_code": str(status),
                        },
                    )
                    assert counted == c.calls, f"{c.name}: counted {counted}, made {c.calls}"
    finally:
        if loop is not None:
            loop.close()
    return timings, contenders


def _table(title: str, timings: dict[str, Timings], baselines: list[str]) -> Table:
    table = Table(["contender", "median µs/call", *(f"vs {b}" for b in baselines)], title=title)
    for name, t in timings.items():
        row = [name, us(t.median)]
        for b in baselines:
            row.append("—" if b == name else ratio(paired_ratio(timings, name, b)))
        table.rows.append(row)
    return table


SUCCESS_KINDS = [
    "bare httpx",
    "OTel httpx transport",
    "flowscope",
    "OTel httpx transport, sampled out",
    "flowscope, traces sampled out",
]
ERROR_KINDS = ["bare httpx", "OTel httpx transport", "flowscope", "Logfire capture_all"]


def success_path(*, rounds: int, batch: int) -> Section:
    body = json.dumps(LAUNCH_BODY).encode()
    section = Section(
        "1. Per-call cost, success path",
        "`POST /api/v2/flows/executions` answered 200 by `httpx.MockTransport` "
        f"({batch} calls per round, {rounds} interleaved rounds). Ratios are the median of "
        "per-round ratios (each pair ran back to back).",
    )
    for is_async in (False, True):
        mode = "async" if is_async else "sync"
        timings, contenders = _measure(
            SUCCESS_KINDS, _success, body, 200, is_async=is_async, rounds=rounds, batch=batch
        )
        section.tables.append(
            _table(
                mode,
                timings,
                ["bare httpx", "OTel httpx transport", "OTel httpx transport, sampled out"],
            )
        )
        r_otel = paired_ratio(timings, "flowscope", "OTel httpx transport")
        section.targets.append(
            Target(
                f"success path ({mode}): flowscope vs OTel alone",
                ratio(r_otel),
                "<= 1.10x",
                r_otel <= 1.10,
            )
        )
        r_bare = paired_ratio(timings, "flowscope, traces sampled out", "bare httpx")
        section.targets.append(
            Target(
                f"traces sampled out ({mode}): flowscope vs bare httpx",
                ratio(r_bare),
                "<= 1.30x",
                r_bare <= 1.30,
            )
        )
        floor = paired_ratio(timings, "OTel httpx transport, sampled out", "bare httpx")
        own = paired_ratio(
            timings, "flowscope, traces sampled out", "OTel httpx transport, sampled out"
        )
        section.notes.append(
            f"{mode}: sampled out, the OpenTelemetry transport alone already costs "
            f"{ratio(floor)} bare httpx (it builds attributes, injects `traceparent` and records "
            f"its duration metric whether or not the span is sampled); flowscope on top of it "
            f"costs {ratio(own)} the transport alone."
        )
        sampled_out = next(c for c in contenders if c.name == "flowscope, traces sampled out")
        section.notes.append(
            f"{mode}: with traces sampled out, `flowscope_requests_total` counted "
            f"{sampled_out.calls:,} of {sampled_out.calls:,} calls (checked exactly)."
        )
    return section


def error_path(*, rounds: int, batch: int) -> Section:
    body = json.dumps(BAD_LAUNCH_BODY).encode()
    kinds = list(ERROR_KINDS)
    section = Section(
        "2. Per-call cost, error path",
        f"400 with a {len(ERROR_BODY):,}-byte Genesys error body (`bad.request`, "
        f"{len(json.loads(ERROR_BODY)['details'])} `details`, nested `errors`), the launch "
        "payload carrying the classic mistakes; the caller reads the body. flowscope runs "
        "with its defaults: full capture, parse, redaction, hints, metrics and the WARNING "
        f"log record ({batch} calls per round, {rounds} interleaved rounds).",
    )
    if _logfire() is None:
        kinds.remove("Logfire capture_all")
        section.notes.append(
            "Logfire is not installed (`pip install 'flowscope[bench]'`): skipped."
        )
    for is_async in (False, True):
        mode = "async" if is_async else "sync"
        timings, _ = _measure(
            kinds, _error, body, 400, is_async=is_async, rounds=rounds, batch=batch
        )
        baselines = ["bare httpx", "OTel httpx transport"]
        if "Logfire capture_all" in timings:
            baselines.append("Logfire capture_all")
        section.tables.append(_table(mode, timings, baselines))
        r_otel = paired_ratio(timings, "flowscope", "OTel httpx transport")
        section.targets.append(
            Target(
                f"error path ({mode}): flowscope vs OTel alone",
                ratio(r_otel),
                "<= 1.50x",
                r_otel <= 1.50,
            )
        )
        if "Logfire capture_all" in timings:
            r_lf = paired_ratio(timings, "flowscope", "Logfire capture_all")
            section.targets.append(
                Target(
                    f"error path ({mode}): flowscope vs Logfire capture_all",
                    ratio(r_lf),
                    "< 1.00x",
                    r_lf < 1.0,
                )
            )
    section.notes.append(
        "Logfire runs with `logfire.configure(local=True, send_to_logfire=False, console=False, "
        "metrics=False)` and the same counting span processor as the others; with "
        "`capture_all=True` it also opens a second span while the body is read."
    )
    return section
