"""Load: every call accounted for, exactly, with no deadlock and no memory growing per call.

5,000 async calls at a concurrency of 200, and 8 threads x 1,000 sync calls sharing one client,
against a loopback server. The mix covers launches (200), flow lookups (200 and 400) and
execution lookups (404), so success and error paths (with error bodies read and replayed)
run side by side. Metrics, spans and failure log records must count exactly what was sent.

``FLOWSCOPE_SOAK=1`` multiplies the sizes by 4.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import multiprocessing
import os
import threading
from collections import Counter
from collections.abc import Iterator
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event

import httpx
import psutil
import pytest
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from prometheus_client import CollectorRegistry

from flowscope import CallRecord, FlowMetrics, FlowScopeTransport, instrument

from .conftest import report_lines
from .servers import Reply

SCALE = 4 if os.environ.get("FLOWSCOPE_SOAK") == "1" else 1
ASYNC_CALLS = 5_000 * SCALE
CONCURRENCY = 200
ASYNC_CLIENTS = 20
THREADS = 8
CALLS_PER_THREAD = 1_000 * SCALE
FLOWS = 10
#: Resident memory may grow this much over a whole run (pools, caches, allocator slack), far
#: less than keeping anything per call would cost at these sizes.
RSS_BUDGET = 96 * 1024 * 1024

LAUNCH = "/api/v2/flows/executions"
JSON = ("Content-Type", "application/json")


def _flow(i: int) -> str:
    return f"0000000{i % FLOWS}-load-flow"


def _plan(i: int) -> tuple[str, str, str, str]:
    """Call ``i``: (method, path, expected flow label, expected status)."""
    kind = i % 3
    if kind == 0:
        return "POST", LAUNCH, _flow(i), "200"
    if kind == 1:
        flow = _flow(i)
        return "GET", f"/api/v2/flows/{flow}", flow, "400" if (i % FLOWS) % 2 else "200"
    return "GET", f"{LAUNCH}/exec-gone", "__unknown__", "404"


def _operation(method: str, path: str) -> str:
    if method == "POST":
        return "launch"
    return "get_execution" if path.startswith(LAUNCH) else "get_flow"


def _replies() -> dict[str, Reply]:
    replies: dict[str, Reply] = {}
    replies[LAUNCH] = Reply(
        200, [JSON], json.dumps({"id": "exec-1", "flowVersion": {"id": "1.0"}}).encode()
    )
    error = {"message": "Invalid input", "code": "bad.request", "status": 400}
    for k in range(FLOWS):
        flow = _flow(k)
        if k % 2:
            replies[f"/api/v2/flows/{flow}"] = Reply(400, [JSON], json.dumps(error).encode())
        else:
            body = {"id": flow, "name": f"Flow {k}", "inputSchema": {"type": "object"}}
            replies[f"/api/v2/flows/{flow}"] = Reply(200, [JSON], json.dumps(body).encode())
    gone = {"message": "not found", "code": "not.found", "status": 404}
    replies[f"{LAUNCH}/exec-gone"] = Reply(404, [JSON], json.dumps(gone).encode())
    return replies


class CountingProcessor(SpanProcessor):
    """Counts finished spans by what a dashboard would group them by; keeps none of them."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self._lock = threading.Lock()

    def on_end(self, span: ReadableSpan) -> None:
        a = span.attributes or {}
        key = (
            str(a.get("flow.operation")),
            str(a.get("flow.id")),
            str(a.get("http.response.status_code")),
        )
        with self._lock:
            self.counts[key] += 1


def _reply_bytes(reply: Reply) -> bytes:
    assert isinstance(reply.body, bytes)
    head = [f"HTTP/1.1 {reply.status} X".encode()]
    head += [f"{k}: {v}".encode() for k, v in reply.headers]
    head.append(f"Content-Length: {len(reply.body)}".encode())
    return b"\r\n".join(head) + b"\r\n\r\n" + reply.body


async def _serve_async(replies: dict[str, Reply], ready: Queue[str], stop: Event) -> None:
    """A minimal keep-alive HTTP/1.1 server: one event loop, no threads, canned replies."""
    canned = {path: _reply_bytes(reply) for path, reply in replies.items()}
    missing = _reply_bytes(Reply(404, [], b""))

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1].split("?", 1)[0]
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                if length:
                    await reader.readexactly(length)
                writer.write(canned.get(path, missing))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    host, port = server.sockets[0].getsockname()[:2]
    ready.put(f"http://{host}:{port}")
    async with server:
        while not stop.is_set():
            await asyncio.sleep(0.1)


def _serve(replies: dict[str, Reply], ready: Queue[str], stop: Event) -> None:
    asyncio.run(_serve_async(replies, ready, stop))


class ServerProcess:
    """A loopback server in its own process.

    In the test's process, a threaded server would fight the client for the GIL, and the run
    would measure that fight instead of flowscope.
    """

    def __init__(self, replies: dict[str, Reply]) -> None:
        context = multiprocessing.get_context("spawn")
        self._ready: Queue[str] = context.Queue()
        self._stop = context.Event()
        self._process = context.Process(
            target=_serve, args=(replies, self._ready, self._stop), daemon=True
        )
        self.url = ""

    def __enter__(self) -> ServerProcess:
        self._process.start()
        self.url = self._ready.get(timeout=60)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)


@pytest.fixture(scope="module")
def load_server() -> Iterator[ServerProcess]:
    with ServerProcess(_replies()) as server:
        yield server


@pytest.fixture
def counted() -> Iterator[tuple[TracerProvider, CountingProcessor]]:
    provider = TracerProvider()
    processor = CountingProcessor()
    provider.add_span_processor(processor)
    yield provider, processor
    provider.shutdown()


FIGURES: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def report_figures(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    report_lines(request, FIGURES)


class CountingHandler(logging.Handler):
    """Counts the failure records of the ``flowscope`` logger instead of keeping them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self._count_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno == logging.WARNING and hasattr(record, "flowscope"):
            with self._count_lock:
                self.count += 1


@pytest.fixture
def warnings() -> Iterator[CountingHandler]:
    log = logging.getLogger("flowscope")
    handler = CountingHandler()
    old = log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(logging.WARNING)
    log.propagate = False  # thousands of records are counted here, not kept by pytest
    yield handler
    log.removeHandler(handler)
    log.level, log.propagate = old


def _expected(calls: int) -> Counter[tuple[str, str, str, str]]:
    out: Counter[tuple[str, str, str, str]] = Counter()
    for i in range(calls):
        method, path, flow, status = _plan(i)
        out[(flow, _operation(method, path), method, status)] += 1
    return out


def _assert_accounted(
    registry: CollectorRegistry,
    processor: CountingProcessor,
    warnings: CountingHandler,
    calls: int,
    statuses: Counter[str],
) -> None:
    expected = _expected(calls)
    by_status: Counter[str] = Counter()
    for key, n in expected.items():
        by_status[key[3]] += n
    assert statuses == by_status  # every caller got the status the server sent
    for (flow, operation, method, status), n in expected.items():
        labels = {"flow": flow, "operation": operation, "method": method, "status_code": status}
        assert registry.get_sample_value("flowscope_requests_total", labels) == n, labels
    total = sum(
        s.value
        for m in registry.collect()
        if m.name == "flowscope_requests"
        for s in m.samples
        if s.name == "flowscope_requests_total"
    )
    assert total == calls
    durations = sum(
        s.value
        for m in registry.collect()
        if m.name == "flowscope_request_duration_seconds"
        for s in m.samples
        if s.name.endswith("_count")
    )
    assert durations == calls
    internal = [
        s
        for m in registry.collect()
        for s in m.samples
        if s.name == "flowscope_internal_errors_total"
    ]
    assert not internal, internal
    spans = Counter(
        {(operation, flow, status): n for (flow, operation, _method, status), n in expected.items()}
    )
    assert processor.counts == spans
    assert sum(processor.counts.values()) == calls
    failed = sum(n for (_, _, _, status), n in expected.items() if int(status) >= 400)
    assert warnings.count == failed  # one log record per failed call


def _live_records() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, CallRecord))


def _rss() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)


async def test_async_calls_at_high_concurrency_are_all_accounted_for(
    load_server: ServerProcess,
    counted: tuple[TracerProvider, CountingProcessor],
    registry: CollectorRegistry,
    warnings: CountingHandler,
) -> None:
    provider, processor = counted
    metrics = FlowMetrics(registry)
    # 200 calls in flight over several pools: httpcore scans every connection of a pool for
    # each request, so a single pool of 200 connections would measure that scan.
    per_client = CONCURRENCY // ASYNC_CLIENTS
    limits = httpx.Limits(max_connections=per_client, max_keepalive_connections=per_client)
    statuses: Counter[str] = Counter()
    gate = asyncio.Semaphore(CONCURRENCY)
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            instrument(
                await stack.enter_async_context(
                    httpx.AsyncClient(base_url=load_server.url, limits=limits, timeout=60)
                ),
                tracer_provider=provider,
                metrics=metrics,
            )
            for _ in range(ASYNC_CLIENTS)
        ]

        async def one(i: int) -> None:
            method, path, _, _ = _plan(i)
            client = clients[i % ASYNC_CLIENTS]
            async with gate:
                if method == "POST":
                    response = await client.post(path, json={"flowId": _flow(i)})
                else:
                    response = await client.get(path)
            statuses[str(response.status_code)] += 1
            assert response.headers["content-type"] == "application/json"
            assert response.json()

        await asyncio.gather(*(one(i) for i in range(ASYNC_CLIENTS)))  # warm up every pool
        records_before = _live_records()
        rss_before = _rss()
        calls = (one(i) for i in range(ASYNC_CLIENTS, ASYNC_CALLS))
        await asyncio.wait_for(asyncio.gather(*calls), 300)
        rss_growth = _rss() - rss_before
    _assert_accounted(registry, processor, warnings, ASYNC_CALLS, statuses)
    FIGURES.append(
        f"\nload: {ASYNC_CALLS} async calls accounted, RSS growth {rss_growth / 2**20:.1f} MiB"
    )
    assert rss_growth < RSS_BUDGET, f"RSS grew {rss_growth / 2**20:.0f} MiB"
    assert _live_records() <= records_before + 1  # nothing is kept per call


def test_threads_sharing_one_client_are_all_accounted_for(
    load_server: ServerProcess,
    counted: tuple[TracerProvider, CountingProcessor],
    registry: CollectorRegistry,
    warnings: CountingHandler,
) -> None:
    provider, processor = counted
    transport = FlowScopeTransport(tracer_provider=provider, metrics=FlowMetrics(registry))
    limits = httpx.Limits(max_connections=THREADS * 2, max_keepalive_connections=THREADS * 2)
    statuses: Counter[str] = Counter()
    failures: list[BaseException] = []
    lock = threading.Lock()
    with httpx.Client(
        base_url=load_server.url, transport=transport, limits=limits, timeout=60
    ) as client:

        def worker(first: int) -> None:
            seen: Counter[str] = Counter()
            try:
                for i in range(first, first + CALLS_PER_THREAD):
                    method, path, _, _ = _plan(i)
                    if method == "POST":
                        response = client.post(path, json={"flowId": _flow(i)})
                    else:
                        response = client.get(path)
                    seen[str(response.status_code)] += 1
                    assert response.json()
            except BaseException as exc:
                failures.append(exc)
            with lock:
                statuses.update(seen)

        records_before = _live_records()
        rss_before = _rss()
        threads = [
            threading.Thread(target=worker, args=(t * CALLS_PER_THREAD,), daemon=True)
            for t in range(THREADS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        assert not any(t.is_alive() for t in threads), "a worker is stuck: deadlock?"
        rss_growth = _rss() - rss_before
    assert not failures, failures[:3]
    _assert_accounted(registry, processor, warnings, THREADS * CALLS_PER_THREAD, statuses)
    FIGURES.append(
        f"load: {THREADS}x{CALLS_PER_THREAD} sync calls accounted, "
        f"RSS growth {rss_growth / 2**20:.1f} MiB"
    )
    assert rss_growth < RSS_BUDGET, f"RSS grew {rss_growth / 2**20:.0f} MiB"
    assert _live_records() <= records_before + THREADS  # at most one last record per thread
