"""SPEC §12: ``OTelFlowMetrics`` records the same facts as ``FlowMetrics``, and they arrive
through the real OTLP/HTTP metric exporter, decoded from the protobuf a collector would get."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

import flowscope
from flowscope import AsyncFlowScopeTransport, FlowScopeTransport, OTelFlowMetrics
from flowscope._metrics import DURATION_BUCKETS, EXECUTION_DURATION_BUCKETS, RETRY_AFTER_BUCKETS
from flowscope.sandbox import Sandbox

from .conftest import Spans
from .otlp_receiver import OTLPReceiver, attributes_of
from .servers import ScriptedServer
from .test_executions import CALLBACK, IGNORED_INPUT, MISSING_CODE
from .test_metrics_traffic import (
    CONFIG,
    LAUNCH,
    SURVEY,
    _calls,
    _reply,
    _send,
    _timeout,
)

ORDER = "Order Status"
Key = frozenset[tuple[str, Any]]


@pytest.fixture(name="flow_api")
def flow_api_fixture() -> Iterator[ScriptedServer]:
    """The loopback flow API answering as tests/test_metrics_traffic.py's scenarios say."""
    with ScriptedServer() as server:
        server.replies[LAUNCH] = _reply
        yield server


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as running:
        yield running


@pytest.fixture
def provider(receiver: OTLPReceiver) -> Iterator[MeterProvider]:
    # Exports only when flushed: one export holds everything the test sent.
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=receiver.metrics_endpoint), export_interval_millis=3_600_000
    )
    meter_provider = MeterProvider(metric_readers=[reader])
    yield meter_provider
    meter_provider.shutdown()


def key(**attributes: Any) -> Key:
    return frozenset(attributes.items())


def values(metric: Metric) -> dict[Key, float]:
    """Each data point's value (a histogram's count), by its attributes."""
    kind = metric.WhichOneof("data")
    if kind == "histogram":
        return {
            frozenset(attributes_of(p.attributes).items()): p.count
            for p in metric.histogram.data_points
        }
    assert kind == "sum", kind
    assert metric.sum.is_monotonic
    return {
        frozenset(attributes_of(p.attributes).items()): p.as_int for p in metric.sum.data_points
    }


def expected(times: int) -> dict[str, dict[Key, float]]:
    """What tests/test_metrics_traffic.py's traffic, sent ``times`` times, comes to."""
    launch = {"operation": "launch"}
    return {
        "flowscope.requests": {
            key(flow=ORDER, method="POST", status_code="200", **launch): 6 * times,
            key(flow=ORDER, method="POST", status_code="400", **launch): 3 * times,
            key(flow=ORDER, method="POST", status_code="429", **launch): 1 * times,
            key(flow=SURVEY, method="POST", status_code="200", **launch): 4 * times,
            key(flow=SURVEY, method="POST", status_code="400", **launch): 4 * times,
        },
        "flowscope.errors": {
            key(flow=ORDER, status_code="400", error_code="bad.request", **launch): 2 * times,
            key(flow=ORDER, status_code="400", error_code="invalid.value", **launch): 1 * times,
            key(flow=ORDER, status_code="429", error_code="too.many.requests", **launch): times,
            key(flow=SURVEY, status_code="400", error_code="bad.request", **launch): 4 * times,
        },
        "flowscope.error.fields": {
            key(flow=ORDER, field="data", **launch): 2 * times,
            key(flow=ORDER, field="inputData.Flow.orderNumber", **launch): 1 * times,
            key(flow=SURVEY, field="execution_context", **launch): 4 * times,
        },
        "flowscope.transport.errors": {
            key(flow=ORDER, exception="ReadTimeout", **launch): 2 * times,
        },
        "flowscope.request.duration": {key(flow=ORDER): 12 * times, key(flow=SURVEY): 8 * times},
        "flowscope.retry_after": {key(flow=ORDER, **launch): 1 * times},
    }


def check_export(receiver: OTLPReceiver, spans: Spans, times: int) -> None:
    metrics = receiver.metrics()
    for name, points in expected(times).items():
        assert values(metrics[name]) == points, name
    duration = metrics["flowscope.request.duration"]
    assert duration.unit == "s"
    for point in duration.histogram.data_points:
        assert list(point.explicit_bounds) == list(DURATION_BUCKETS)
    (retry,) = metrics["flowscope.retry_after"].histogram.data_points
    assert (list(retry.explicit_bounds), retry.sum) == (list(RETRY_AFTER_BUCKETS), 1.0 * times)
    # Exemplars link the counts to the calls' traces, as the Prometheus exemplars do.
    traces = {(s.context.trace_id, s.context.span_id) for s in spans.all()}
    for name in ("flowscope.requests", "flowscope.request.duration"):
        metric = metrics[name]
        data = metric.sum if metric.WhichOneof("data") == "sum" else metric.histogram
        linked = [
            (int.from_bytes(e.trace_id, "big"), int.from_bytes(e.span_id, "big"))
            for point in data.data_points
            for e in point.exemplars
        ]
        assert len(linked) >= len(data.data_points), name
        assert set(linked) <= traces, name


def test_known_sync_traffic_arrives_over_otlp_with_exact_counts(
    flow_api: ScriptedServer, receiver: OTLPReceiver, provider: MeterProvider, spans: Spans
) -> None:
    transport = FlowScopeTransport(
        config=CONFIG, metrics=OTelFlowMetrics(provider), tracer_provider=spans.provider
    )
    with httpx.Client(base_url=flow_api.url, transport=transport) as client:
        for payload in _calls(times=2):
            _send(client, payload)
    assert provider.force_flush()
    assert len(receiver.metric_requests) == 1
    check_export(receiver, spans, times=2)


async def test_known_async_traffic_arrives_over_otlp_with_exact_counts(
    receiver: OTLPReceiver, provider: MeterProvider, spans: Spans
) -> None:
    transport = AsyncFlowScopeTransport(
        httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=100)),
        config=CONFIG,
        metrics=OTelFlowMetrics(provider),
        tracer_provider=spans.provider,
    )
    payloads = list(_calls(times=5))
    # The server answers nothing until every request has arrived: the calls overlap.
    with ScriptedServer(hold_until=len(payloads)) as server:
        server.replies[LAUNCH] = _reply
        async with httpx.AsyncClient(base_url=server.url, transport=transport) as client:

            async def send(payload: dict[str, Any]) -> None:
                with contextlib.suppress(httpx.ReadTimeout):
                    await client.post(LAUNCH, json=payload, timeout=_timeout(payload))

            await asyncio.gather(*(send(p) for p in payloads))
        assert server.max_in_flight == len(payloads) == 100
    assert provider.force_flush()
    check_export(receiver, spans, times=5)


def test_instrument_takes_otel_metrics_and_bounds_flows_as_prometheus_does(
    receiver: OTLPReceiver, provider: MeterProvider, spans: Spans
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        limits = {"inin-ratelimit-allowed": "300", "inin-ratelimit-count": "297"}
        return httpx.Response(200, headers=limits, json={"id": "e"})

    client = flowscope.instrument(
        httpx.Client(transport=httpx.MockTransport(answer), base_url="https://api.mypurecloud.ie"),
        metrics=OTelFlowMetrics(provider, max_flows=2),
        tracer_provider=spans.provider,
    )
    with client:
        for flow in ("a", "b", "c", "d", "a"):
            client.post("/api/v2/flows/executions", json={"flowId": flow})
    assert provider.force_flush()
    metrics = receiver.metrics()
    status = {"operation": "launch", "method": "POST", "status_code": "200"}
    assert values(metrics["flowscope.requests"]) == {
        key(flow="a", **status): 2,
        key(flow="b", **status): 1,
        key(flow="__other__", **status): 2,
    }
    assert values(metrics["flowscope.label.overflow"]) == {key(label="flow"): 2}
    gauges = {
        name: {
            attributes_of(p.attributes)["host"]: p.as_int
            for p in metrics[f"flowscope.ratelimit.{name}"].gauge.data_points
        }
        for name in ("allowed", "used")
    }
    assert gauges == {"allowed": {"api.mypurecloud.ie": 300}, "used": {"api.mypurecloud.ie": 297}}


def test_setup_metrics_exports_over_otlp_at_shutdown(
    flow_api: ScriptedServer, receiver: OTLPReceiver, spans: Spans
) -> None:
    provider = flowscope.setup_metrics(
        "batch-job", otlp_endpoint=receiver.base_url, set_global=False
    )
    transport = FlowScopeTransport(
        config=CONFIG, metrics=OTelFlowMetrics(provider), tracer_provider=spans.provider
    )
    with httpx.Client(base_url=flow_api.url, transport=transport) as client:
        _send(client, {"flowId": SURVEY, "inputData": {"Flow.case": "ok"}})
    provider.shutdown()
    (export,) = receiver.metric_requests
    (resource,) = export.resource_metrics
    assert attributes_of(resource.resource.attributes)["service.name"] == "batch-job"
    assert values(receiver.metrics()["flowscope.requests"]) == {
        key(flow=SURVEY, operation="launch", method="POST", status_code="200"): 1
    }


def test_execution_outcomes_arrive_over_otlp_once_each_with_the_launch_trace(
    receiver: OTLPReceiver, provider: MeterProvider, spans: Spans
) -> None:
    with Sandbox(execution_seconds=0, seed=3) as sandbox:
        headers = {"Authorization": f"Bearer {sandbox.issue_token()}"}
        client = flowscope.instrument(
            httpx.Client(base_url=sandbox.url, headers=headers),
            metrics=OTelFlowMetrics(provider),
            tracer_provider=spans.provider,
        )
        with client:
            execution_id = client.post(LAUNCH, json=IGNORED_INPUT).json()["id"]
            for _ in range(3):
                client.get(f"{LAUNCH}/{execution_id}")
    assert provider.force_flush()
    metrics = receiver.metrics()
    failed = key(flow=CALLBACK, status="FAILED", error_code=MISSING_CODE)
    assert values(metrics["flowscope.executions"]) == {failed: 1}
    duration = metrics["flowscope.execution.duration"]
    assert values(duration) == {key(flow=CALLBACK, status="FAILED"): 1}
    (point,) = duration.histogram.data_points
    assert list(point.explicit_bounds) == list(EXECUTION_DURATION_BUCKETS)
    in_flight = metrics["flowscope.executions.in_flight"]
    assert not in_flight.sum.is_monotonic
    assert [(attributes_of(p.attributes), p.as_int) for p in in_flight.sum.data_points] == [
        ({"flow": CALLBACK}, 0)
    ]
    # The outcome links to the launch's trace, not to the poll that saw it.
    launch = next(s for s in spans.all() if (s.attributes or {})["flow.operation"] == "launch")
    (exemplar,) = metrics["flowscope.executions"].sum.data_points[0].exemplars
    assert int.from_bytes(exemplar.span_id, "big") == launch.context.span_id
