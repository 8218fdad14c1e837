"""Adversarial input: hostile flow ids and error bodies cost bounded work and output.

Flow ids come from the caller's payload and the server's replies; error bodies come from the
server. Whatever they hold, flowscope must not crash, must keep spans, logs and metric series
bounded, must keep the metrics exposition valid (checked with ``promtool check metrics``), and
must keep spans exportable over OTLP.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_fd_to_metric_families
from prometheus_client.parser import text_string_to_metric_families

from flowscope import (
    CallRecord,
    FlowMetrics,
    FlowScopeConfig,
    FlowScopeTransport,
    RecordedError,
    parse_error_body,
)

from .conftest import LogCapture, Spans
from .otlp_receiver import OTLPReceiver, span_attributes

SOAK = os.environ.get("FLOWSCOPE_SOAK") == "1"
LAUNCH = "/api/v2/flows/executions"
CAPTURE = 65536
#: What one span may carry at most: the two body events at the capture limit, plus the rest.
SPAN_BUDGET = 2 * CAPTURE + 16 * 1024
MAX_LABEL = 128

HOSTILE_IDS = {
    "huge": "f" * (1024 * 1024),
    "huge-unicode": "é" * (512 * 1024),
    "binary": "".join(chr(c) for c in range(32)) + "\x7f\x80\x9f",
    "lone-surrogate": "flow-\ud800-\udfff",
    "quotes": "a\"b'c",
    "newlines": "line1\nline2\r\nline3",
    "braces": 'x"} 1\nflowscope_requests_total{flow="forged"',
    "backslashes": "a\\b\\\\c\\",
    "empty": "",
    "spaces": "   ",
    "label-syntax": 'flow="x",operation="y"',
    "exposition-comment": "# TYPE forged counter",
    "nul": "\x00",
}


FAMILIES = {
    "flowscope_requests",
    "flowscope_request_duration_seconds",
    "flowscope_errors",
    "flowscope_error_fields",
    "flowscope_transport_errors",
    "flowscope_label_overflow",
    "flowscope_internal_errors",
}


def _span_size(span: ReadableSpan) -> int:
    size = len(span.name) + len(span.status.description or "")
    for value in (span.attributes or {}).values():
        size += len(str(value))
    for event in span.events:
        size += sum(len(str(v)) for v in (event.attributes or {}).values())
    return size


def _promtool_check(exposition: bytes) -> None:
    """The Prometheus tool's own parser and linter agree the exposition is valid."""
    promtool = shutil.which("promtool")
    # `make test` installs it (scripts/ensure-tools): a missing binary is a failure, not a skip.
    assert promtool is not None, "promtool is not on PATH: run `make test` or scripts/ensure-tools"
    done = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, timeout=60
    )
    assert done.returncode == 0, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])


def _families(registry: CollectorRegistry) -> dict[str, Any]:
    text = generate_latest(registry).decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def _flow_labels(registry: CollectorRegistry) -> set[str]:
    family = _families(registry)["flowscope_requests"]
    return {s.labels["flow"] for s in family.samples if s.name == "flowscope_requests_total"}


def _error_reply(request: httpx.Request) -> httpx.Response:
    return httpx.Response(400, json={"code": "bad.request", "message": "Invalid input"})


@pytest.fixture
def hostile_client(spans: Spans, metrics: FlowMetrics) -> Iterator[httpx.Client]:
    transport = FlowScopeTransport(
        httpx.MockTransport(_error_reply), tracer_provider=spans.provider, metrics=metrics
    )
    with httpx.Client(transport=transport, base_url="http://127.0.0.1:9") as client:
        yield client


@pytest.mark.parametrize("name", sorted(HOSTILE_IDS))
def test_a_hostile_flow_id_is_bounded_in_spans_logs_and_labels(
    name: str,
    hostile_client: httpx.Client,
    spans: Spans,
    registry: CollectorRegistry,
    flowscope_logs: LogCapture,
) -> None:
    flow_id = HOSTILE_IDS[name]
    body = json.dumps({"flowId": flow_id, "inputData": {"Flow.x": 1}})
    response = hostile_client.post(
        LAUNCH, content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json() == {"code": "bad.request", "message": "Invalid input"}

    span = spans.one()
    attributes = span.attributes or {}
    shown = str(attributes["flow.id"])
    assert len(shown) <= MAX_LABEL
    assert shown.isprintable()  # no control character, no lone surrogate
    assert _span_size(span) <= SPAN_BUDGET

    (record,) = [r for r in flowscope_logs.records if r.levelname == "WARNING"]
    assert len(json.dumps(record.flowscope, default=str)) <= SPAN_BUDGET  # type: ignore[attr-defined]
    assert len(record.getMessage()) <= 4096
    # One line for the failure and one per hint: nothing else can start a (forged) log line.
    lines = record.getMessage().split("\n")
    assert len(lines) == 1 + len(record.flowscope.get("hints", []))  # type: ignore[attr-defined]
    assert all(line.isprintable() for line in lines)

    labels = _flow_labels(registry)
    assert len(labels) == 1
    (label,) = labels
    assert len(label) <= MAX_LABEL
    assert label.isprintable()
    exposition = generate_latest(registry)
    forged = {n.removesuffix("_created") for n in _families(registry)} - FAMILIES
    assert not forged  # no family or series was forged
    _promtool_check(exposition)
    # promtool reads the classic format; the OpenMetrics one (with exemplars) must parse too.
    families = text_fd_to_metric_families(io.StringIO(generate_openmetrics(registry).decode()))
    assert {f.name for f in families} >= {"flowscope_requests", "flowscope_errors"}


def test_hostile_flow_ids_do_not_poison_an_otlp_batch(metrics: FlowMetrics) -> None:
    """One span the exporter cannot encode would make it drop the whole batch with it."""
    with OTLPReceiver() as receiver:
        provider = TracerProvider()
        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=receiver.endpoint))
        )
        transport = FlowScopeTransport(
            httpx.MockTransport(_error_reply), tracer_provider=provider, metrics=metrics
        )
        with httpx.Client(transport=transport, base_url="http://127.0.0.1:9") as client:
            for flow_id in HOSTILE_IDS.values():
                body = json.dumps({"flowId": flow_id})
                client.post(LAUNCH, content=body, headers={"Content-Type": "application/json"})
            client.post(LAUNCH, json={"flowId": "plain-flow"})
        assert provider.force_flush(10_000)
        provider.shutdown()
        exported = receiver.wait_for_spans(len(HOSTILE_IDS) + 1)
    assert len(exported) == len(HOSTILE_IDS) + 1
    ids = [span_attributes(s)["flow.id"] for s in exported]
    assert "plain-flow" in ids
    assert all(len(i) <= MAX_LABEL for i in ids)
    assert sum(len(w) for w in receiver.wire) < (len(HOSTILE_IDS) + 1) * SPAN_BUDGET


def _record(flow_id: str, status: int = 400, fields: tuple[str, ...] = ()) -> CallRecord:
    return CallRecord(
        operation="launch",
        template=LAUNCH,
        method="POST",
        flow_id=flow_id,
        flow_name=None,
        flow_version=None,
        execution_id=None,
        url=f"https://api.example.invalid{LAUNCH}",
        status_code=status,
        outcome="client_error",
        duration_s=0.01,
        error=RecordedError(kind="genesys", code="bad.request", fields=fields),
    )


def test_one_hundred_thousand_flow_ids_keep_the_series_bounded(
    registry: CollectorRegistry,
) -> None:
    metrics = FlowMetrics(registry, max_flows=200, max_fields=100)
    for i in range(100_000):
        metrics.observe(_record(f"flow-{i:06d}", fields=(f"field-{i % 1000}",)))
    labels = _flow_labels(registry)
    assert len(labels) == 201  # the first 200 and __other__
    assert "__other__" in labels
    overflow = registry.get_sample_value("flowscope_label_overflow_total", {"label": "flow"})
    assert overflow == 100_000 - 200
    total = sum(
        s.value
        for s in _families(registry)["flowscope_requests"].samples
        if s.name == "flowscope_requests_total"
    )
    assert total == 100_000  # folded, never dropped
    exposition = generate_latest(registry)
    assert len(exposition) < 2 * 1024 * 1024
    _promtool_check(exposition)


def test_many_distinct_flow_ids_through_a_client_keep_the_series_bounded(
    spans: Spans, registry: CollectorRegistry
) -> None:
    calls = 100_000 if SOAK else 2_000
    metrics = FlowMetrics(registry, max_flows=50)
    transport = FlowScopeTransport(
        httpx.MockTransport(_error_reply), tracer_provider=spans.provider, metrics=metrics
    )
    with httpx.Client(transport=transport, base_url="http://127.0.0.1:9") as client:
        for i in range(calls):
            client.post(LAUNCH, json={"flowId": f"{i:08x}-attacker-chosen"})
            if i % 500 == 0:
                spans.clear()
    assert len(_flow_labels(registry)) == 51
    overflow = registry.get_sample_value("flowscope_label_overflow_total", {"label": "flow"})
    assert overflow == calls - 50


def _details_body(count: int) -> bytes:
    details = [{"errorCode": "INVALID", "fieldName": f"inputData.Flow.f{i}"} for i in range(count)]
    doc = {"message": "Invalid input", "code": "bad.request", "status": 400, "details": details}
    return json.dumps(doc).encode()


DETAILS = _details_body(100_000)
FIRST_HUNDRED_FIELDS = tuple(f"inputData.Flow.f{i}" for i in range(100))


def test_the_parser_bounds_one_hundred_thousand_details() -> None:
    report = parse_error_body(400, {"content-type": "application/json"}, DETAILS)
    assert report.code == "bad.request"
    assert report.fields == FIRST_HUNDRED_FIELDS


@pytest.mark.parametrize("limit", [CAPTURE, 16 * 1024 * 1024], ids=["default", "16MiB"])
def test_an_error_body_with_one_hundred_thousand_details_is_bounded(
    limit: int, spans: Spans, registry: CollectorRegistry, flowscope_logs: LogCapture
) -> None:
    metrics = FlowMetrics(registry, max_fields=100)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, headers={"Content-Type": "application/json"}, content=DETAILS)

    config = FlowScopeConfig(capture_limit_bytes=limit)
    transport = FlowScopeTransport(
        httpx.MockTransport(handler), config=config, tracer_provider=spans.provider, metrics=metrics
    )
    with httpx.Client(transport=transport, base_url="http://127.0.0.1:9") as client:
        response = client.post(LAUNCH, json={"flowId": "f-1"})
    assert response.content == DETAILS  # the caller gets every byte

    span = spans.one()
    attributes = span.attributes or {}
    assert attributes["flow.error.code"] == "bad.request"
    # Cut at 64 KiB the body is not JSON any more: the code comes from the prefix, no fields.
    fields_shown = FIRST_HUNDRED_FIELDS if limit > len(DETAILS) else ()
    assert tuple(attributes.get("flow.error.fields", ())) == fields_shown
    assert ("flow.error.fields" in attributes) == bool(fields_shown)
    (body,) = [e for e in span.events if e.name == "flow.error.body"]
    assert len(str((body.attributes or {})["body"]).encode()) <= limit
    assert (body.attributes or {})["body.size"] == len(DETAILS)
    fields = {
        s.labels["field"]
        for s in _families(registry)["flowscope_error_fields"].samples
        if s.name == "flowscope_error_fields_total"
    }
    assert fields == set(fields_shown)  # the first 100 fields; none folded into __other__
    assert len(generate_latest(registry)) < 256 * 1024


def test_errors_nested_ten_thousand_deep_are_parsed_without_crashing(
    spans: Spans, metrics: FlowMetrics
) -> None:
    body = _deep_errors(10_000)
    report = parse_error_body(400, {"content-type": "application/json"}, body)
    assert report.status == 400

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, headers={"Content-Type": "application/json"}, content=body)

    config = FlowScopeConfig(capture_limit_bytes=len(body) + 1)
    transport = FlowScopeTransport(
        httpx.MockTransport(handler), config=config, tracer_provider=spans.provider, metrics=metrics
    )
    with httpx.Client(transport=transport, base_url="http://127.0.0.1:9") as client:
        assert client.post(LAUNCH, json={"flowId": "f-1"}).content == body
    assert spans.one().status.status_code.name == "ERROR"


def _deep_errors(depth: int) -> bytes:
    # Built as text: json.dumps itself would hit the recursion limit at this depth.
    head = b'{"message": "wrapper", "code": "bad.request", "errors": ['
    return head * depth + b'{"message": "leaf"}' + b"]}" * depth
