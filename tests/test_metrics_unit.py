"""Per-flow Prometheus metrics: names, labels, bounds, exemplars and exposition (SPEC §5)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from flowscope._metrics import (
    FlowMetrics,
    default_metrics,
    make_asgi_app,
    make_wsgi_app,
    serve_metrics,
)
from flowscope._record import CallRecord, RecordedError

from .prometheus_server import PrometheusServer, free_port

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"


def call(
    flow_id: str = "flow-a",
    *,
    status_code: int | None = 200,
    operation: str = "launch",
    method: str = "POST",
    duration_s: float = 0.2,
    error_code: str | None = None,
    fields: tuple[str, ...] = (),
    exception_type: str | None = None,
    flow_name: str | None = None,
    trace_id: str | None = None,
    span_id: str | None = None,
) -> CallRecord:
    if status_code is None:
        outcome = "transport_error"
    elif status_code >= 500:
        outcome = "server_error"
    elif status_code >= 400:
        outcome = "client_error"
    else:
        outcome = "success"
    error = None
    if status_code is not None and status_code >= 400:
        error = RecordedError(kind="genesys", code=error_code, fields=fields)
    return CallRecord(
        operation=operation,
        template="/api/v2/flows/executions",
        method=method,
        flow_id=flow_id,
        flow_name=flow_name,
        flow_version=None,
        execution_id=None,
        url="https://api.mypurecloud.com/api/v2/flows/executions",
        status_code=status_code,
        outcome=outcome,
        duration_s=duration_s,
        error=error,
        exception_type=exception_type,
        trace_id=trace_id,
        span_id=span_id,
    )


def requests(registry: CollectorRegistry, **labels: str) -> float | None:
    return registry.get_sample_value("flowscope_requests_total", labels)


def overflow(registry: CollectorRegistry, label: str) -> float | None:
    return registry.get_sample_value("flowscope_label_overflow_total", {"label": label})


def label_values(registry: CollectorRegistry, sample_name: str, label: str) -> set[str]:
    return {
        sample.labels[label]
        for family in registry.collect()
        for sample in family.samples
        if sample.name == sample_name
    }


def openmetrics(registry: CollectorRegistry) -> str:
    return generate_openmetrics(registry).decode()


def test_requests_are_counted_per_flow_operation_method_and_status(
    metrics: FlowMetrics, registry: CollectorRegistry
) -> None:
    for _ in range(3):
        metrics.observe(call("flow-a", status_code=200))
    metrics.observe(call("flow-a", status_code=400, error_code="bad.request"))
    metrics.observe(call("flow-b", status_code=200, operation="get_execution", method="GET"))

    labels = {"flow": "flow-a", "operation": "launch", "method": "POST"}
    assert requests(registry, **labels, status_code="200") == 3
    assert requests(registry, **labels, status_code="400") == 1
    assert (
        requests(
            registry, flow="flow-b", operation="get_execution", method="GET", status_code="200"
        )
        == 1
    )


def test_metric_families_are_exposed_under_their_documented_names(
    metrics: FlowMetrics, registry: CollectorRegistry
) -> None:
    metrics.observe(call(status_code=500, error_code="internal.server.error", fields=("x",)))
    metrics.observe(call(status_code=None, exception_type="ConnectTimeout"))
    metrics.internal_error("span")

    text = generate_latest(registry).decode()
    for name, kind in [
        ("flowscope_requests_total", "counter"),
        ("flowscope_request_duration_seconds", "histogram"),
        ("flowscope_errors_total", "counter"),
        ("flowscope_error_fields_total", "counter"),
        ("flowscope_transport_errors_total", "counter"),
        ("flowscope_label_overflow_total", "counter"),
        ("flowscope_internal_errors_total", "counter"),
    ]:
        assert f"# TYPE {name} {kind}\n" in text
    assert 'flowscope_requests_total{flow="flow-a",method="POST",operation="launch",' in text
    assert 'flowscope_requests_total{flow="flow-a",method="POST",operation="launch",' in (
        openmetrics(registry)
    )


def test_duration_uses_otel_http_client_buckets_and_includes_transport_errors(
    metrics: FlowMetrics, registry: CollectorRegistry
) -> None:
    metrics.observe(call(duration_s=0.07))
    metrics.observe(call(status_code=None, exception_type="ReadTimeout", duration_s=10.5))

    buckets = label_values(registry, "flowscope_request_duration_seconds_bucket", "le")
    assert buckets == {
        *("0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75"),
        *("1.0", "2.5", "5.0", "7.5", "10.0", "+Inf"),
    }
    success = {"flow": "flow-a", "operation": "launch", "outcome": "success"}
    assert (
        registry.get_sample_value(
            "flowscope_request_duration_seconds_bucket", {**success, "le": "0.075"}
        )
        == 1
    )
    assert (
        registry.get_sample_value(
            "flowscope_request_duration_seconds_bucket", {**success, "le": "0.05"}
        )
        == 0
    )
    failed = {"flow": "flow-a", "operation": "launch", "outcome": "transport_error"}
    assert registry.get_sample_value("flowscope_request_duration_seconds_count", failed) == 1
    assert registry.get_sample_value("flowscope_request_duration_seconds_sum", failed) == 10.5


def test_error_response_counts_its_error_code_and_every_field(
    metrics: FlowMetrics, registry: CollectorRegistry
) -> None:
    fields = ("inputData.Flow.customerId", "flowId")
    metrics.observe(call(status_code=400, error_code="invalid.value", fields=fields))
    metrics.observe(call(status_code=400, error_code="invalid.value", fields=fields[:1]))

    errors = {"flow": "flow-a", "operation": "launch", "status_code": "400"}
    assert (
        registry.get_sample_value(
            "flowscope_errors_total", {**errors, "error_code": "invalid.value"}
        )
        == 2
    )
    base = {"flow": "flow-a", "operation": "launch"}
    field_total = "flowscope_error_fields_total"
    assert registry.get_sample_value(field_total, {**base, "field": fields[0]}) == 2
    assert registry.get_sample_value(field_total, {**base, "field": "flowId"}) == 1


def test_error_response_without_a_code_counts_as_none(
    metrics: FlowMetrics, registry: CollectorRegistry
) -> None:
    metrics.observe(call(status_code=502, error_code=None))

    labels = {"flow": "flow-a", "operation": "launch", "status_code": "502"}
    assert (
        registry.get_sample_value("flowscope_errors_total", {**labels, "error_code": "__none__"})
        == 1
    )


def test_success_and_redirects_are_not_errors(
    metrics: FlowMetrics, registry: CollectorRegistry
) -> None:
    metrics.observe(call(status_code=200))
    metrics.observe(call(status_code=302))

    assert label_values(registry, "flowscope_errors_total", "status_code") == set()


def test_transport_error_counts_only_as_transport_error(
    metrics: FlowMetrics, registry: CollectorRegistry
) -> None:
    metrics.observe(call(status_code=None, exception_type="ConnectTimeout"))

    assert (
        registry.get_sample_value(
            "flowscope_transport_errors_total",
            {"flow": "flow-a", "operation": "launch", "exception": "ConnectTimeout"},
        )
        == 1
    )
    assert label_values(registry, "flowscope_requests_total", "flow") == set()
    assert label_values(registry, "flowscope_errors_total", "flow") == set()


def test_flow_name_replaces_flow_id_as_label(
    metrics: FlowMetrics, registry: CollectorRegistry
) -> None:
    metrics.observe(call("8c1f6e3a-uuid", flow_name="Order status"))

    assert label_values(registry, "flowscope_requests_total", "flow") == {"Order status"}


def test_unknown_http_method_becomes_other(
    metrics: FlowMetrics, registry: CollectorRegistry
) -> None:
    metrics.observe(call(method="BREW"))

    assert label_values(registry, "flowscope_requests_total", "method") == {"_OTHER"}


def test_ten_thousand_flow_ids_never_grow_past_max_flows(
    metrics: FlowMetrics, registry: CollectorRegistry
) -> None:
    for i in range(10_000):
        metrics.observe(call(f"attacker-{i}", status_code=400, error_code="bad.request"))

    for sample_name in (
        "flowscope_requests_total",
        "flowscope_errors_total",
        "flowscope_request_duration_seconds_count",
    ):
        flows = label_values(registry, sample_name, "flow")
        assert len(flows) == 201
        assert "__other__" in flows
    other = {"flow": "__other__", "operation": "launch", "method": "POST", "status_code": "400"}
    assert requests(registry, **other) == 10_000 - 200
    assert overflow(registry, "flow") == 10_000 - 200


def test_every_fold_is_counted_even_for_a_repeated_value(registry: CollectorRegistry) -> None:
    metrics = FlowMetrics(registry, max_flows=1)
    metrics.observe(call("kept"))
    for _ in range(3):
        metrics.observe(call("folded"))
    metrics.observe(call("kept"))

    assert label_values(registry, "flowscope_requests_total", "flow") == {"kept", "__other__"}
    assert overflow(registry, "flow") == 3


def test_fields_and_error_codes_are_bounded_separately(registry: CollectorRegistry) -> None:
    metrics = FlowMetrics(registry, max_fields=2, max_error_codes=1)
    metrics.observe(call(status_code=400, error_code="bad.request", fields=("a", "b", "c", "d")))
    metrics.observe(call(status_code=400, error_code="invalid.value", fields=("a",)))

    assert label_values(registry, "flowscope_error_fields_total", "field") == {
        "a",
        "b",
        "__other__",
    }
    assert label_values(registry, "flowscope_errors_total", "error_code") == {
        "bad.request",
        "__other__",
    }
    assert overflow(registry, "field") == 2
    assert overflow(registry, "error_code") == 1
    assert overflow(registry, "flow") == 0


def test_sentinel_flow_values_never_use_up_a_slot(registry: CollectorRegistry) -> None:
    metrics = FlowMetrics(registry, max_flows=1)
    for sentinel in ("__missing__", "__unknown__", "__none__"):
        metrics.observe(call(sentinel))
    metrics.observe(call("real-flow"))

    assert label_values(registry, "flowscope_requests_total", "flow") == {
        "__missing__",
        "__unknown__",
        "__none__",
        "real-flow",
    }
    assert overflow(registry, "flow") == 0


def test_overflow_series_start_at_zero_and_nothing_else_is_precreated(
    metrics: FlowMetrics, registry: CollectorRegistry
) -> None:
    for label in ("flow", "field", "error_code"):
        assert overflow(registry, label) == 0
    samples = [s for family in registry.collect() for s in family.samples]
    assert {s.name for s in samples} == {
        "flowscope_label_overflow_total",
        "flowscope_label_overflow_created",
    }


def test_internal_errors_are_counted_by_stage(
    metrics: FlowMetrics, registry: CollectorRegistry
) -> None:
    metrics.internal_error("metrics")
    metrics.internal_error("metrics")
    metrics.internal_error("span")

    name = "flowscope_internal_errors_total"
    assert registry.get_sample_value(name, {"stage": "metrics"}) == 2
    assert registry.get_sample_value(name, {"stage": "span"}) == 1


def test_trace_id_exemplar_appears_in_openmetrics_exposition(
    metrics: FlowMetrics, registry: CollectorRegistry
) -> None:
    metrics.observe(
        call(status_code=400, error_code="bad.request", trace_id=TRACE_ID, span_id=SPAN_ID)
    )

    exemplar = f'# {{span_id="{SPAN_ID}",trace_id="{TRACE_ID}"}} 1.0'
    lines = openmetrics(registry).splitlines()
    for name in ("flowscope_requests_total{", "flowscope_errors_total{"):
        assert any(line.startswith(name) and exemplar in line for line in lines)
    buckets = [line for line in lines if line.startswith("flowscope_request_duration_seconds_b")]
    assert any(f'trace_id="{TRACE_ID}"' in line for line in buckets)


def test_calls_without_sampled_span_or_with_malformed_ids_carry_no_exemplar(
    metrics: FlowMetrics, registry: CollectorRegistry
) -> None:
    metrics.observe(call("unsampled"))
    metrics.observe(call("malformed", trace_id="x" * 200, span_id=SPAN_ID))

    assert "trace_id" not in openmetrics(registry)
    assert (
        requests(registry, flow="malformed", operation="launch", method="POST", status_code="200")
        == 1
    )


HOSTILE_VALUES = [
    'quote"in"flow',
    "back\\slash\\",
    "new\nline\r\n",
    "tab\tand\x00nul\x1b[31m",
    "lone surrogate \ud800 here",
    "bytes \udcff\udcfe from surrogateescape",
    "emoji 🚀 and accents é",
    "",
    "x" * 10_000,
]


def test_hostile_label_values_keep_the_exposition_valid(
    metrics: FlowMetrics, registry: CollectorRegistry
) -> None:
    for value in HOSTILE_VALUES:
        metrics.observe(
            call(
                value,
                status_code=400,
                error_code=value,
                fields=(value,),
                operation=value,
                trace_id=TRACE_ID,
            )
        )
        metrics.observe(call(value, status_code=None, exception_type=value, operation=value))
        metrics.internal_error(value)

    text = generate_latest(registry)
    checked = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    families = list(text_string_to_metric_families(openmetrics(registry)))
    flows = {s.labels["flow"] for f in families for s in f.samples if "flow" in s.labels}
    assert len(flows) == len(HOSTILE_VALUES)
    assert all(len(flow) <= 128 for flow in flows)
    assert 'quote"in"flow' in flows
    assert "back\\slash\\" in flows


def test_concurrent_observes_lose_no_increment(registry: CollectorRegistry) -> None:
    metrics = FlowMetrics(registry, max_flows=10)
    threads, per_thread = 20, 25
    barrier = threading.Barrier(threads)

    def work(worker: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            metrics.observe(call(f"flow-{(worker * per_thread + i) % 40}"))

    pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()

    counts = {
        flow: requests(registry, flow=flow, operation="launch", method="POST", status_code="200")
        for flow in label_values(registry, "flowscope_requests_total", "flow")
    }
    assert sum(v or 0 for v in counts.values()) == threads * per_thread
    assert len(counts) == 11
    assert overflow(registry, "flow") == counts["__other__"]


def test_second_instance_on_a_registry_is_refused_and_for_registry_reuses_the_first(
    metrics: FlowMetrics, registry: CollectorRegistry
) -> None:
    with pytest.raises(ValueError, match="for_registry"):
        FlowMetrics(registry)

    assert FlowMetrics.for_registry(registry) is metrics
    assert FlowMetrics.for_registry(CollectorRegistry()) is not metrics
    other_namespace = FlowMetrics.for_registry(registry, namespace="other")
    assert other_namespace is not metrics
    other_namespace.observe(call())
    labels = {"flow": "flow-a", "operation": "launch", "method": "POST", "status_code": "200"}
    assert registry.get_sample_value("other_requests_total", labels) == 1


def test_default_metrics_is_one_instance_on_the_default_registry() -> None:
    metrics = default_metrics()

    assert metrics is default_metrics()
    assert metrics.registry is REGISTRY
    assert FlowMetrics.for_registry(None) is metrics
    with pytest.raises(ValueError):
        FlowMetrics()


def test_multiprocess_mode_counts_without_exemplars(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector
        from prometheus_client.openmetrics.exposition import generate_latest
        from flowscope._record import RecordedError
        from flowscope._metrics import FlowMetrics
        from flowscope._record import CallRecord

        record = CallRecord(
            operation="launch", template="/api/v2/flows/executions", method="POST",
            flow_id="flow-a", flow_name=None, flow_version=None, execution_id=None, url="",
            status_code=400, outcome="client_error", duration_s=0.2,
            error=RecordedError(kind="genesys", code="bad.request"),
            trace_id={TRACE_ID!r}, span_id={SPAN_ID!r},
        )
        metrics = FlowMetrics(CollectorRegistry())
        for _ in range(3):
            metrics.observe(record)
        scrape = CollectorRegistry()
        MultiProcessCollector(scrape)
        print(generate_latest(scrape).decode())
        """
    )
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 0, done.stderr
    assert (
        'flowscope_requests_total{flow="flow-a",method="POST",operation="launch",'
        'status_code="400"} 3.0'
    ) in done.stdout
    assert (
        'flowscope_errors_total{error_code="bad.request",flow="flow-a",operation="launch",'
        'status_code="400"} 3.0'
    ) in done.stdout
    assert "trace_id" not in done.stdout


@pytest.fixture
def served(metrics: FlowMetrics, registry: CollectorRegistry) -> Iterator[str]:
    port = free_port()
    server, thread = serve_metrics(port, registry=registry)
    yield f"http://127.0.0.1:{port}/metrics"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_served_metrics_show_exemplars_only_to_openmetrics_scrapers(
    metrics: FlowMetrics, served: str
) -> None:
    metrics.observe(call(trace_id=TRACE_ID, span_id=SPAN_ID))

    open_metrics = httpx.get(served, headers={"Accept": "application/openmetrics-text"})
    plain = httpx.get(served)

    assert open_metrics.headers["content-type"].startswith("application/openmetrics-text")
    assert f'trace_id="{TRACE_ID}"' in open_metrics.text
    assert plain.headers["content-type"].startswith("text/plain")
    assert "flowscope_requests_total{" in plain.text
    assert "trace_id" not in plain.text


def test_wsgi_app_serves_the_registry(metrics: FlowMetrics, registry: CollectorRegistry) -> None:
    metrics.observe(call("wsgi-flow"))

    with httpx.Client(transport=httpx.WSGITransport(app=make_wsgi_app(registry))) as client:
        body = client.get("http://metrics.test/metrics").text

    assert 'flowscope_requests_total{flow="wsgi-flow"' in body


async def test_asgi_app_serves_the_registry(
    metrics: FlowMetrics, registry: CollectorRegistry
) -> None:
    metrics.observe(call("asgi-flow"))

    transport = httpx.ASGITransport(app=make_asgi_app(registry))
    async with httpx.AsyncClient(transport=transport) as client:
        body = (await client.get("http://metrics.test/metrics")).text

    assert 'flowscope_requests_total{flow="asgi-flow"' in body


def test_real_prometheus_stores_per_flow_counts_and_trace_exemplars(
    prometheus: PrometheusServer,
    metrics: FlowMetrics,
    served: str,
) -> None:
    instance = httpx.URL(served).netloc.decode()
    traces = {"flow-a": TRACE_ID, "flow-b": "0af7651916cd43dd8448eb211c80319c"}
    for flow, trace_id in traces.items():
        for _ in range(3 if flow == "flow-a" else 2):
            metrics.observe(call(flow, trace_id=trace_id, span_id=SPAN_ID))
    start = time.time() - 60

    prometheus.set_targets([instance])
    by_flow = f'sum by (flow) (flowscope_requests_total{{instance="{instance}"}})'
    result = prometheus.wait_for(by_flow, lambda r: len(r) == 2, timeout=20)

    assert {r["metric"]["flow"]: float(r["value"][1]) for r in result} == {
        "flow-a": 3.0,
        "flow-b": 2.0,
    }
    stored = prometheus.exemplars(
        f'flowscope_requests_total{{instance="{instance}"}}', start, time.time() + 60
    )
    trace_ids = {
        exemplar["labels"]["trace_id"] for series in stored for exemplar in series["exemplars"]
    }
    assert trace_ids == set(traces.values())
