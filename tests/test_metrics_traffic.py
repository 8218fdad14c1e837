"""SPEC §5 end to end: known traffic through the transports gives exactly those metrics,
and a real Prometheus scraping them answers the 400-rate query with the injected ratio.

The flow API is the scripted loopback server: "timeout" calls meet a server that never answers
(a real read timeout), and the async test proves its 500 calls were all in flight at once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest, start_http_server

import flowscope
from flowscope import AsyncFlowScopeTransport, FlowMetrics, FlowScopeConfig, FlowScopeTransport

from .conftest import Spans
from .prometheus_server import PrometheusServer, free_port
from .servers import Reply, ScriptedServer

LAUNCH = "/api/v2/flows/executions"
#: How long a call waits for a server that stalls before it raises ReadTimeout.
READ_TIMEOUT = 0.5
#: Calls that are answered wait longer than any server hold in these tests.
ANSWERED = httpx.Timeout(60.0)
STALLED = httpx.Timeout(60.0, read=READ_TIMEOUT)
ORDER = "11111111-1111-4111-8111-111111111111"
SURVEY = "22222222-2222-4222-8222-222222222222"
CONFIG = FlowScopeConfig(flow_names={ORDER: "Order Status"})

# What each scenario answers; the payload's inputData names the scenario.
SCENARIOS: dict[str, tuple[int, dict[str, Any]]] = {
    "ok": (200, {"id": "exec", "flowVersion": {"id": "1.0"}}),
    "data": (
        400,
        {"code": "bad.request", "message": "Invalid input", "details": [{"fieldName": "data"}]},
    ),
    "ctx": (
        400,
        {
            "code": "bad.request",
            "message": "Invalid input",
            "details": [{"fieldName": "execution_context"}],
        },
    ),
    "type": (
        400,
        {
            "code": "invalid.value",
            "message": "Invalid value",
            "details": [{"fieldName": "inputData.Flow.orderNumber"}],
        },
    ),
    "limit": (429, {"code": "too.many.requests", "message": "Rate limit exceeded"}),
}

#: Per flow: scenario -> how many calls. For "timeout" the server never answers.
TRAFFIC: dict[str, dict[str, int]] = {
    ORDER: {"ok": 6, "data": 2, "type": 1, "limit": 1, "timeout": 2},
    SURVEY: {"ok": 4, "ctx": 4},
}


def _reply(body: bytes) -> Reply:
    case = json.loads(body)["inputData"]["Flow.case"]
    if case == "timeout":
        return Reply(stall=True)
    status, doc = SCENARIOS[case]
    headers = [("Content-Type", "application/json")]
    if status == 429:
        headers.append(("Retry-After", "1"))
    return Reply(status, headers, json.dumps(doc).encode())


@pytest.fixture
def flow_api() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        server.replies[LAUNCH] = _reply
        yield server


def _calls(times: int = 1) -> Iterator[dict[str, Any]]:
    for _ in range(times):
        for flow, mix in TRAFFIC.items():
            for case, n in mix.items():
                for _ in range(n):
                    yield {"flowId": flow, "inputData": {"Flow.case": case}}


def _timeout(payload: dict[str, Any]) -> httpx.Timeout:
    return STALLED if payload["inputData"]["Flow.case"] == "timeout" else ANSWERED


def _send(client: httpx.Client, payload: dict[str, Any]) -> None:
    with contextlib.suppress(httpx.ReadTimeout):
        client.post(LAUNCH, json=payload, timeout=_timeout(payload))


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def _check_counts(registry: CollectorRegistry, times: int) -> None:
    order, survey = "Order Status", SURVEY
    base = {"operation": "launch"}
    assert (
        _value(
            registry,
            "flowscope_requests_total",
            flow=order,
            method="POST",
            status_code="200",
            **base,
        )
        == 6 * times
    )
    assert (
        _value(
            registry,
            "flowscope_requests_total",
            flow=order,
            method="POST",
            status_code="400",
            **base,
        )
        == 3 * times
    )
    assert (
        _value(
            registry,
            "flowscope_requests_total",
            flow=order,
            method="POST",
            status_code="429",
            **base,
        )
        == 1 * times
    )
    assert (
        _value(
            registry,
            "flowscope_requests_total",
            flow=survey,
            method="POST",
            status_code="400",
            **base,
        )
        == 4 * times
    )
    assert (
        _value(
            registry,
            "flowscope_errors_total",
            flow=order,
            status_code="400",
            error_code="bad.request",
            **base,
        )
        == 2 * times
    )
    assert (
        _value(
            registry,
            "flowscope_errors_total",
            flow=order,
            status_code="400",
            error_code="invalid.value",
            **base,
        )
        == 1 * times
    )
    assert (
        _value(
            registry,
            "flowscope_errors_total",
            flow=order,
            status_code="429",
            error_code="too.many.requests",
            **base,
        )
        == 1 * times
    )
    assert (
        _value(registry, "flowscope_error_fields_total", flow=order, field="data", **base)
        == 2 * times
    )
    assert (
        _value(
            registry,
            "flowscope_error_fields_total",
            flow=order,
            field="inputData.Flow.orderNumber",
            **base,
        )
        == 1 * times
    )
    assert (
        _value(
            registry, "flowscope_error_fields_total", flow=survey, field="execution_context", **base
        )
        == 4 * times
    )
    assert (
        _value(
            registry,
            "flowscope_transport_errors_total",
            flow=order,
            exception="ReadTimeout",
            **base,
        )
        == 2 * times
    )
    # Transport errors are not requests with a status; they are in the latency histogram.
    total = sum(
        s.value
        for m in registry.collect()
        if m.name == "flowscope_requests"
        for s in m.samples
        if s.name == "flowscope_requests_total"
    )
    assert total == (20 - 2) * times
    assert (
        _value(
            registry,
            "flowscope_request_duration_seconds_count",
            flow=order,
            outcome="transport_error",
            **base,
        )
        == 2 * times
    )
    assert (
        _value(
            registry,
            "flowscope_request_duration_seconds_count",
            flow=order,
            outcome="client_error",
            **base,
        )
        == 4 * times
    )


def test_known_sync_traffic_gives_exact_counts(
    flow_api: ScriptedServer, spans: Spans, registry: CollectorRegistry
) -> None:
    metrics = FlowMetrics(registry)
    transport = FlowScopeTransport(config=CONFIG, metrics=metrics, tracer_provider=spans.provider)
    with httpx.Client(base_url=flow_api.url, transport=transport) as client:
        for payload in _calls(times=3):
            _send(client, payload)
    _check_counts(registry, times=3)
    assert len(spans.all()) == 20 * 3
    errors = [(s.attributes or {}).get("error.type") for s in spans.all()]
    assert errors.count("ReadTimeout") == 2 * 3  # the server's stall, met as a real read timeout
    assert len(flow_api.seen) == 20 * 3  # every call reached the server, the stalled ones too


async def test_known_async_traffic_gives_exact_counts_under_500_concurrent_calls(
    spans: Spans, registry: CollectorRegistry
) -> None:
    metrics = FlowMetrics(registry)
    transport = AsyncFlowScopeTransport(
        httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=500)),
        config=CONFIG,
        metrics=metrics,
        tracer_provider=spans.provider,
    )
    payloads = list(_calls(times=25))
    assert len(payloads) == 500

    # The server answers nothing until all 500 requests have arrived: if the calls did not
    # overlap, the first would wait for the others and none would ever come.
    with ScriptedServer(hold_until=500) as server:
        server.replies[LAUNCH] = _reply
        async with httpx.AsyncClient(base_url=server.url, transport=transport) as client:

            async def send(payload: dict[str, Any]) -> None:
                with contextlib.suppress(httpx.ReadTimeout):
                    await client.post(LAUNCH, json=payload, timeout=_timeout(payload))

            await asyncio.gather(*(send(p) for p in payloads))
        assert (server.arrived, server.max_in_flight) == (500, 500)

    durations = sum(
        s.value
        for m in registry.collect()
        for s in m.samples
        if s.name == "flowscope_request_duration_seconds_count"
    )
    assert durations == 500
    assert len(spans.all()) == 500
    _check_counts(registry, times=25)


def test_ten_thousand_flow_ids_stay_bounded(registry: CollectorRegistry) -> None:
    metrics = FlowMetrics(registry, max_flows=50)
    transport = FlowScopeTransport(
        httpx.MockTransport(lambda r: httpx.Response(400, json={"code": "not.found"})),
        metrics=metrics,
    )
    with httpx.Client(transport=transport, base_url="http://127.0.0.1:9") as client:
        for i in range(10_000):
            client.post(LAUNCH, json={"flowId": f"attacker-{i}"})
    flows = {
        s.labels["flow"]
        for m in registry.collect()
        for s in m.samples
        if s.name == "flowscope_requests_total"
    }
    assert len(flows) == 51 and "__other__" in flows
    assert _value(registry, "flowscope_label_overflow_total", label="flow") == 10_000 - 50
    assert (
        _value(
            registry,
            "flowscope_requests_total",
            flow="__other__",
            operation="launch",
            method="POST",
            status_code="400",
        )
        == 10_000 - 50
    )


def test_promtool_accepts_the_exposition(
    flow_api: ScriptedServer, registry: CollectorRegistry
) -> None:
    metrics = FlowMetrics(registry)
    transport = FlowScopeTransport(config=CONFIG, metrics=metrics)
    with httpx.Client(base_url=flow_api.url, transport=transport) as client:
        for payload in _calls():
            _send(client, payload)
    result = subprocess.run(
        ["promtool", "check", "metrics"],
        input=generate_latest(registry),
        capture_output=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_real_prometheus_answers_the_400_rate_query_and_links_exemplars_to_spans(
    prometheus: PrometheusServer, flow_api: ScriptedServer, spans: Spans
) -> None:
    registry = CollectorRegistry()
    metrics = FlowMetrics(registry)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        transport = FlowScopeTransport(
            config=CONFIG, metrics=metrics, tracer_provider=spans.provider
        )
        instance = f"127.0.0.1:{port}"
        start = time.time() - 5
        total = f'sum(flowscope_requests_total{{instance="{instance}"}})'
        with httpx.Client(base_url=flow_api.url, transport=transport) as client:
            for payload in _calls():
                _send(client, payload)
            prometheus.set_targets([instance])
            prometheus.wait_for(total, lambda r: bool(r) and float(r[0]["value"][1]) == 18)
            # A second, identical round between two scrapes: rate() sees exactly its mix.
            for payload in _calls():
                _send(client, payload)
            prometheus.wait_for(total, lambda r: bool(r) and float(r[0]["value"][1]) == 36)

        sel = f'instance="{instance}"'
        query = (
            f'sum by (flow) (rate(flowscope_requests_total{{status_code="400",{sel}}}[5m]))'
            f" / sum by (flow) (rate(flowscope_requests_total{{{sel}}}[5m]))"
        )
        ratios = {r["metric"]["flow"]: float(r["value"][1]) for r in prometheus.query(query)}
        assert ratios == pytest.approx({"Order Status": 3 / 10, SURVEY: 4 / 8})

        stored = prometheus.exemplars(f"flowscope_requests_total{{{sel}}}", start, time.time() + 5)
        exemplar_traces = {
            e["labels"]["trace_id"] for series in stored for e in series["exemplars"]
        }
        span_traces = {f"{s.context.trace_id:032x}" for s in spans.all()}
        assert exemplar_traces and exemplar_traces <= span_traces
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        prometheus.set_targets([])


def test_flow_names_label_and_span_attribute(
    flow_api: ScriptedServer, spans: Spans, registry: CollectorRegistry
) -> None:
    metrics = FlowMetrics(registry)
    client = flowscope.instrument(
        httpx.Client(base_url=flow_api.url),
        config=CONFIG,
        metrics=metrics,
        tracer_provider=spans.provider,
    )
    with client:
        client.post(LAUNCH, json={"flowId": ORDER, "inputData": {"Flow.case": "data"}})
    attrs = spans.one().attributes or {}
    assert attrs["flow.name"] == "Order Status" and attrs["flow.id"] == ORDER
    assert (
        _value(
            registry,
            "flowscope_errors_total",
            flow="Order Status",
            operation="launch",
            status_code="400",
            error_code="bad.request",
        )
        == 1
    )
