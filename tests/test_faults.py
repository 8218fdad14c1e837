"""Fail open: whatever breaks around or inside flowscope, the caller gets what it would have got.

Faults are injected into collaborators (the span exporter, span processors, the tracer provider,
the metrics sink, the error parser) and the instrumented call is compared with the bare one.
A call must not wait for an exporter stuck for 30 seconds: the tests check that every call
returned while that export was still in progress, an ordering no busy machine can fake.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer
from prometheus_client import CollectorRegistry

import flowscope._engine
from flowscope import (
    AsyncFlowScopeTransport,
    CallRecord,
    FlowMetrics,
    FlowScopeConfig,
    FlowScopeTransport,
)

from .conftest import LogCapture, Spans
from .servers import Reply, ScriptedServer

LAUNCH = "/api/v2/flows/executions"
FLOW_ID = "6e1a4b2c-0c7d-4d59-9f6e-2b0a1d2f3c4d"
ERROR_BODY = {
    "message": "Invalid input",
    "code": "bad.request",
    "status": 400,
    "details": [{"errorCode": "UNRECOGNIZED_FIELD", "fieldName": "data"}],
}
PAYLOAD = {"flowId": FLOW_ID, "data": {"a": 1}}
#: How long the stuck export lasts: a call waiting for it would return only after it ended.
HANG_SECONDS = 30


def _json_reply(status: int, doc: Any) -> Reply:
    return Reply(status, [("Content-Type", "application/json")], json.dumps(doc).encode())


def _exchange(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    return response.status_code, list(response.headers.multi_items()), response.content


def _bare(server: ScriptedServer) -> tuple[int, list[tuple[str, str]], bytes]:
    with httpx.Client(base_url=server.url) as client:
        return _exchange(client.post(LAUNCH, json=PAYLOAD))


def _internal(registry: CollectorRegistry, stage: str) -> float:
    return registry.get_sample_value("flowscope_internal_errors_total", {"stage": stage}) or 0.0


def _requests(registry: CollectorRegistry, status: str = "400") -> float:
    labels = {"flow": FLOW_ID, "operation": "launch", "method": "POST", "status_code": status}
    return registry.get_sample_value("flowscope_requests_total", labels) or 0.0


@pytest.fixture
def error_server(server: ScriptedServer) -> ScriptedServer:
    server.replies[LAUNCH] = _json_reply(400, ERROR_BODY)
    return server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class HangingCollector:
    """Accepts connections and never answers: a collector stuck behind a broken proxy."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.1)
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/v1/traces"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                continue
            self.accepted.append(conn)

    def __enter__(self) -> HangingCollector:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self.accepted:
            conn.close()
        self._listener.close()


class WatchedExporter(SpanExporter):
    """Passes spans to a real exporter and counts the exports begun and ended."""

    def __init__(self, inner: SpanExporter) -> None:
        self._inner = inner
        self.begun = 0
        self.ended = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.begun += 1
        try:
            return self._inner.export(spans)
        finally:
            self.ended += 1

    def shutdown(self) -> None:
        self._inner.shutdown()

    def wait_until_an_export_began(self) -> None:
        deadline = time.monotonic() + 10
        while not self.begun and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.begun == 1, "the exporter never started an export"


def _calls_return_while_the_export_is_stuck(
    server: ScriptedServer, provider: TracerProvider, exporter: WatchedExporter, count: int
) -> None:
    """The first call's span starts an export that stays stuck; ``count`` calls race it."""
    registry = CollectorRegistry()
    expected = _bare(server)
    transport = FlowScopeTransport(tracer_provider=provider, metrics=FlowMetrics(registry))
    with httpx.Client(base_url=server.url, transport=transport) as client:
        assert _exchange(client.post(LAUNCH, json=PAYLOAD)) == expected
        exporter.wait_until_an_export_began()
        assert exporter.ended == 0, "the first call returned only after its span's export ended"
        for _ in range(count):
            assert _exchange(client.post(LAUNCH, json=PAYLOAD)) == expected
    # Every call returned while that one export was still stuck: none waited for it.
    assert (exporter.begun, exporter.ended) == (1, 0)
    assert _requests(registry) == count + 1


# -- the exporter ----------------------------------------------------------------------------


def test_calls_are_unchanged_and_prompt_when_the_collector_is_down(
    error_server: ScriptedServer,
) -> None:
    # Connection refused: the exporter retries with backoff for up to HANG_SECONDS.
    exporter = WatchedExporter(
        OTLPSpanExporter(
            endpoint=f"http://127.0.0.1:{_free_port()}/v1/traces", timeout=HANG_SECONDS
        )
    )
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=10))
    try:
        _calls_return_while_the_export_is_stuck(error_server, provider, exporter, 30)
    finally:
        exporter.shutdown()  # ends the export's retries at once
        provider.shutdown()


def test_calls_are_unchanged_and_prompt_while_the_collector_hangs(
    error_server: ScriptedServer,
) -> None:
    provider = TracerProvider()
    exporter: WatchedExporter | None = None
    try:
        with HangingCollector() as collector:
            exporter = WatchedExporter(
                OTLPSpanExporter(endpoint=collector.endpoint, timeout=HANG_SECONDS)
            )
            provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=10))
            _calls_return_while_the_export_is_stuck(error_server, provider, exporter, 30)
            assert len(collector.accepted) == 1  # the stuck export did reach the collector
    finally:
        if exporter is not None:
            exporter.shutdown()  # ends the export's retries at once
        provider.shutdown()


# -- a broken tracer provider ----------------------------------------------------------------


class RaisingProcessor(SpanProcessor):
    def __init__(self, *, on_start: bool = False, on_end: bool = False) -> None:
        self.raise_on_start = on_start
        self.raise_on_end = on_end

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if self.raise_on_start:
            raise RuntimeError("span processor broke in on_start")

    def on_end(self, span: ReadableSpan) -> None:
        if self.raise_on_end:
            raise RuntimeError("span processor broke in on_end")


@pytest.mark.parametrize("where", ["on_start", "on_end"])
def test_a_span_processor_that_raises_does_not_fail_the_call(
    where: str, error_server: ScriptedServer, registry: CollectorRegistry
) -> None:
    expected = _bare(error_server)
    provider = TracerProvider()
    provider.add_span_processor(RaisingProcessor(**{where: True}))
    transport = FlowScopeTransport(tracer_provider=provider, metrics=FlowMetrics(registry))
    with httpx.Client(base_url=error_server.url, transport=transport) as client:
        for _ in range(3):
            assert _exchange(client.post(LAUNCH, json=PAYLOAD)) == expected
    assert _internal(registry, "span") == 3
    assert _requests(registry) == 3  # the metrics sink still saw every call
    provider.shutdown()


@pytest.mark.parametrize("where", ["on_start", "on_end"])
async def test_a_span_processor_that_raises_does_not_fail_the_async_call(
    where: str, error_server: ScriptedServer, registry: CollectorRegistry
) -> None:
    async with httpx.AsyncClient(base_url=error_server.url) as bare:
        expected = _exchange(await bare.post(LAUNCH, json=PAYLOAD))
    provider = TracerProvider()
    provider.add_span_processor(RaisingProcessor(**{where: True}))
    transport = AsyncFlowScopeTransport(tracer_provider=provider, metrics=FlowMetrics(registry))
    async with httpx.AsyncClient(base_url=error_server.url, transport=transport) as client:
        assert _exchange(await client.post(LAUNCH, json=PAYLOAD)) == expected
    assert _internal(registry, "span") == 1
    assert _requests(registry) == 1
    provider.shutdown()


def test_a_processor_raising_on_end_still_lets_the_other_processors_export(
    error_server: ScriptedServer, registry: CollectorRegistry
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.add_span_processor(RaisingProcessor(on_end=True))
    transport = FlowScopeTransport(tracer_provider=provider, metrics=FlowMetrics(registry))
    with httpx.Client(base_url=error_server.url, transport=transport) as client:
        client.post(LAUNCH, json=PAYLOAD)
    (span,) = exporter.get_finished_spans()
    assert (span.attributes or {})["flow.error.code"] == "bad.request"
    provider.shutdown()


class BrokenProvider(TracerProvider):
    def get_tracer(self, *args: Any, **kwargs: Any) -> Tracer:
        raise RuntimeError("no tracer today")


def test_a_tracer_provider_that_cannot_give_a_tracer_does_not_fail_the_call(
    error_server: ScriptedServer, registry: CollectorRegistry
) -> None:
    expected = _bare(error_server)
    transport = FlowScopeTransport(tracer_provider=BrokenProvider(), metrics=FlowMetrics(registry))
    with httpx.Client(base_url=error_server.url, transport=transport) as client:
        assert _exchange(client.post(LAUNCH, json=PAYLOAD)) == expected
    assert _internal(registry, "span") == 1
    assert _requests(registry) == 1


def test_a_transport_error_under_a_broken_processor_is_still_the_callers_error(
    registry: CollectorRegistry,
) -> None:
    provider = TracerProvider()
    provider.add_span_processor(RaisingProcessor(on_end=True))
    transport = FlowScopeTransport(
        httpx.HTTPTransport(retries=0), tracer_provider=provider, metrics=FlowMetrics(registry)
    )
    url = f"http://127.0.0.1:{_free_port()}{LAUNCH}"
    with httpx.Client() as bare, pytest.raises(httpx.ConnectError) as bare_error:
        bare.post(url, json=PAYLOAD)
    with httpx.Client(transport=transport) as client, pytest.raises(httpx.ConnectError) as error:
        client.post(url, json=PAYLOAD)
    assert str(error.value) == str(bare_error.value)
    # Nothing of flowscope's own failure is chained onto the caller's exception.
    assert type(error.value.__context__) is type(bare_error.value.__context__)
    assert _internal(registry, "span") == 1
    provider.shutdown()


# -- a broken metrics sink ---------------------------------------------------------------------


class RaisingMetrics(FlowMetrics):
    """A metrics sink whose registry write fails (e.g. a broken custom collector)."""

    def observe(self, record: CallRecord) -> None:
        raise RuntimeError("registry is read-only")


def test_a_metrics_sink_that_raises_does_not_fail_the_call_and_is_counted(
    error_server: ScriptedServer, registry: CollectorRegistry, spans: Spans
) -> None:
    expected = _bare(error_server)
    transport = FlowScopeTransport(tracer_provider=spans.provider, metrics=RaisingMetrics(registry))
    with httpx.Client(base_url=error_server.url, transport=transport) as client:
        for _ in range(2):
            assert _exchange(client.post(LAUNCH, json=PAYLOAD)) == expected
    assert _internal(registry, "metrics") == 2
    assert len(spans.all()) == 2  # the span sink is independent of the metrics sink
    assert all((s.attributes or {})["flow.error.code"] == "bad.request" for s in spans.all())


# -- label-value collisions ------------------------------------------------------------------


def test_flows_that_share_a_label_value_are_counted_together(
    error_server: ScriptedServer, registry: CollectorRegistry
) -> None:
    long_a = "f" * 128 + "-a"
    long_b = "f" * 128 + "-b"
    config = FlowScopeConfig(flow_names={"id-1": "Order Status", "id-2": "Order Status"})
    transport = FlowScopeTransport(config=config, metrics=FlowMetrics(registry))
    with httpx.Client(base_url=error_server.url, transport=transport) as client:
        for flow_id in ("id-1", "id-2", "id-2", long_a, long_b, "__other__"):
            assert client.post(LAUNCH, json={"flowId": flow_id}).status_code == 400

    def count(flow: str) -> float:
        labels = {"flow": flow, "operation": "launch", "method": "POST", "status_code": "400"}
        return registry.get_sample_value("flowscope_requests_total", labels) or 0.0

    assert count("Order Status") == 3
    assert count("f" * 128) == 2  # cut to the label limit, the two ids meet
    assert count("__other__") == 1
    assert _internal(registry, "metrics") == 0


# -- user hooks ------------------------------------------------------------------------------


class HookError(Exception):
    pass


def _raise(message: str) -> Any:
    def hook(_: Any) -> None:
        raise HookError(message)

    return hook


@pytest.mark.parametrize("hook", ["request", "response"])
def test_an_event_hook_that_raises_propagates_exactly_as_without_flowscope(
    hook: str, error_server: ScriptedServer, registry: CollectorRegistry, spans: Spans
) -> None:
    hooks = {hook: [_raise(f"{hook} hook says no")]}
    bare = httpx.Client(base_url=error_server.url, event_hooks=hooks)
    with bare, pytest.raises(HookError) as bare_error:
        bare.post(LAUNCH, json=PAYLOAD)
    transport = FlowScopeTransport(tracer_provider=spans.provider, metrics=FlowMetrics(registry))
    client = httpx.Client(base_url=error_server.url, event_hooks=hooks, transport=transport)
    with client, pytest.raises(HookError) as error:
        client.post(LAUNCH, json=PAYLOAD)
    assert error.value.args == bare_error.value.args
    assert error.value.__context__ is None and error.value.__cause__ is None
    # A request hook stops the call before the transport; a response hook runs after it.
    sent = 1 if hook == "response" else 0
    assert len(spans.all()) == sent
    assert _requests(registry) == sent
    assert _internal(registry, "span") + _internal(registry, "record") == 0


async def test_an_async_response_hook_that_raises_propagates_unchanged(
    error_server: ScriptedServer, registry: CollectorRegistry
) -> None:
    async def hook(response: httpx.Response) -> None:
        raise HookError("async hook says no")

    transport = AsyncFlowScopeTransport(metrics=FlowMetrics(registry))
    async with httpx.AsyncClient(
        base_url=error_server.url, event_hooks={"response": [hook]}, transport=transport
    ) as client:
        with pytest.raises(HookError, match="async hook says no"):
            await client.post(LAUNCH, json=PAYLOAD)
    assert _requests(registry) == 1


# -- flowscope's own parser failing ----------------------------------------------------------


@pytest.fixture
def broken_parser(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def parse_error_body(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("parser bug near 'Authorization: Bearer Q7leakedInTraceback1'")

    monkeypatch.setattr(flowscope._engine, "parse_error_body", parse_error_body)
    yield


def test_the_error_parser_failing_leaves_the_response_alone_and_is_counted_once_in_the_log(
    error_server: ScriptedServer,
    registry: CollectorRegistry,
    spans: Spans,
    flowscope_logs: LogCapture,
    broken_parser: None,
) -> None:
    expected = _bare(error_server)
    transport = FlowScopeTransport(tracer_provider=spans.provider, metrics=FlowMetrics(registry))
    with httpx.Client(base_url=error_server.url, transport=transport) as client:
        for _ in range(3):
            assert _exchange(client.post(LAUNCH, json=PAYLOAD)) == expected
    assert _internal(registry, "record") == 3
    # The bare record (no flow id: nothing it did not check) still reaches the metrics.
    labels = {"flow": "__unknown__", "operation": "launch", "method": "POST", "status_code": "400"}
    assert registry.get_sample_value("flowscope_requests_total", labels) == 3
    errors = [r for r in flowscope_logs.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "'record'" in errors[0].getMessage()
    assert "ValueError" in errors[0].getMessage()
    formatted = logging.Formatter().format(errors[0])
    assert "Q7leakedInTraceback1" not in formatted  # the traceback text is redacted too
    assert len(spans.all()) == 3
    assert all(s.status.status_code.name == "ERROR" for s in spans.all())


async def test_the_error_parser_failing_leaves_the_async_response_alone(
    error_server: ScriptedServer, registry: CollectorRegistry, broken_parser: None
) -> None:
    async with httpx.AsyncClient(base_url=error_server.url) as bare:
        expected = _exchange(await bare.post(LAUNCH, json=PAYLOAD))
    transport = AsyncFlowScopeTransport(metrics=FlowMetrics(registry))
    async with httpx.AsyncClient(base_url=error_server.url, transport=transport) as client:
        assert _exchange(await client.post(LAUNCH, json=PAYLOAD)) == expected
    assert _internal(registry, "record") == 1
