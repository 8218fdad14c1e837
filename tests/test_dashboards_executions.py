"""The execution panels and rules, run against a real Prometheus scraping real sandbox traffic.

The same method as test_dashboards_prometheus.py: known traffic (launches and polls against the
loopback sandbox, whose flows end as told) is sent in two identical batches, Prometheus scrapes a
snapshot of the registry after each, so every counter is first seen at its per-batch count and
then at twice that, and each rate panel must read one factor times the injected count.

Per batch, in this order:
- 2 launches of UNSEEN, never polled; the store holds exactly as many executions as the batch
  then launches and polls, so both are forgotten without an outcome: ``__unobserved__``;
- "orders" (named through flow_names): 6 launches with Flow.id -> COMPLETED, 2 without ->
  FAILED ``flow.variable.not.set`` (failure ratio 0.25);
- CALM: 4 launches, all COMPLETED (ratio 0, not absent);
- BROKEN: 1 launch, ERROR ``internal.server.error`` (ratio 1);
each polled twice, to show that an outcome counts once however often it is polled. After the
second batch only, one launch of PENDING stays in flight. Executions end at once
(``execution_seconds=0``), so every duration is 0 and lands in the first bucket.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST, generate_latest

import flowscope
from flowscope import CallRecord, FlowMetrics, FlowScopeConfig
from flowscope._metrics import EXECUTION_DURATION_BUCKETS
from flowscope.sandbox import Sandbox, SandboxFlow

from .prometheus_server import PrometheusServer
from .servers import Reply, ScriptedServer
from .test_dashboards import RULES, load_dashboard, recording_rules, substitute, targets

LAUNCH = "/api/v2/flows/executions"
ALL_FLOWS = ".*"
SCHEMA = {
    "type": "object",
    "properties": {"Flow.id": {"type": ["null", "string"]}},
    "additionalProperties": False,
}


def _flow(number: int, name: str, **settings: Any) -> SandboxFlow:
    return SandboxFlow(
        id=f"00000000-0000-4000-8000-{number:012d}",
        name=name,
        version="1.0",
        input_schema=SCHEMA,
        output_schema={"type": "object", "properties": {}},
        **settings,
    )


ORDERS = _flow(1, "Orders", required_inputs=("Flow.id",))
CALM = _flow(2, "Calm")
BROKEN = _flow(3, "Broken", error_rate=1.0)
UNSEEN = _flow(4, "Unseen")
PENDING = _flow(5, "Pending")
LABELS = {ORDERS.id: "orders"}
ORD, CAL, BRK, UNS, PEN = "orders", CALM.id, BROKEN.id, UNSEEN.id, PENDING.id
#: (flow, with Flow.id) launched and polled per batch.
POLLED = [(ORDERS, True)] * 6 + [(ORDERS, False)] * 2 + [(CALM, True)] * 4 + [(BROKEN, True)]
OUTCOMES_PER_BATCH = len(POLLED)
UNOBSERVED_PER_BATCH = 2


@dataclass
class Scraped:
    prometheus: PrometheusServer
    at: float
    start: float
    launch_traces: set[str]


def _batch(client: httpx.Client) -> None:
    for _ in range(UNOBSERVED_PER_BATCH):
        client.post(LAUNCH, json={"flowId": UNSEEN.id})
    for flow, with_input in POLLED:
        body: dict[str, Any] = {"flowId": flow.id}
        if with_input:
            body["inputData"] = {"Flow.id": "o-1"}
        execution_id = client.post(LAUNCH, json=body).json()["id"]
        for _ in range(2):
            client.get(f"{LAUNCH}/{execution_id}")


@pytest.fixture(scope="module")
def scraped() -> Iterator[Scraped]:
    registry = CollectorRegistry()
    metrics = FlowMetrics(registry)
    provider = TracerProvider()
    records: list[CallRecord] = []
    config = FlowScopeConfig(flow_names=LABELS, max_tracked_executions=len(POLLED))

    def publish() -> None:
        exporter.replies["/metrics"] = Reply(
            200, [("Content-Type", CONTENT_TYPE_LATEST)], generate_latest(registry)
        )

    flows = [ORDERS, CALM, BROKEN, UNSEEN, PENDING]
    with Sandbox(flows=flows, execution_seconds=0, seed=1) as sandbox, ScriptedServer() as exporter:
        exporter.replies["/metrics"] = Reply(
            200, [("Content-Type", CONTENT_TYPE_LATEST)], b"# EOF\n"
        )
        instance = exporter.url.removeprefix("http://")
        prometheus = PrometheusServer([instance], scrape_interval="1s", rule_files=[RULES])
        client = flowscope.instrument(
            httpx.Client(
                base_url=sandbox.url,
                headers={"Authorization": f"Bearer {sandbox.issue_token()}"},
            ),
            config=config,
            tracer_provider=provider,
            metrics=metrics,
            on_record=records.append,
        )
        try:
            with client:
                start = time.time()
                total = f"sum(flowscope_executions_total{{instance='{instance}'}})"
                per_batch = OUTCOMES_PER_BATCH + UNOBSERVED_PER_BATCH
                _batch(client)
                publish()
                prometheus.start()
                prometheus.wait_for(
                    total, lambda r: bool(r) and float(r[0]["value"][1]) == per_batch
                )
                _batch(client)
                client.post(LAUNCH, json={"flowId": PENDING.id})
                publish()
                prometheus.wait_for(
                    total, lambda r: bool(r) and float(r[0]["value"][1]) == 2 * per_batch
                )
            traces = {r.trace_id for r in records if r.operation == "launch" and r.trace_id}
            yield Scraped(prometheus, time.time(), start, traces)
        finally:
            prometheus.stop()
            provider.shutdown()


def _quantile(q: float) -> float:
    # Every duration is 0: all in the first bucket, read linearly from 0 to its bound.
    return EXECUTION_DURATION_BUCKETS[0] * q


def _expected(rate: float, hourly: float) -> dict[str, dict[tuple[str, ...], float]]:
    """Each execution query's series (label values sorted by label name) -> value."""
    return {
        "Execution outcomes per flow-A": {
            (ORD, "COMPLETED"): 6 * rate,
            (ORD, "FAILED"): 2 * rate,
            (CAL, "COMPLETED"): 4 * rate,
            (BRK, "ERROR"): 1 * rate,
        },
        "Execution failure ratio per flow-A": {(ORD,): 0.25, (CAL,): 0.0, (BRK,): 1.0},
        "Execution duration p50 / p95-A": {(): _quantile(0.5)},
        "Execution duration p50 / p95-B": {(): _quantile(0.95)},
        "Top flowErrorInfo codes-A": {
            ("flow.variable.not.set",): 2 * hourly,
            ("internal.server.error",): 1 * hourly,
        },
        "In flight and unobserved-A": {
            (ORD,): 0.0,
            (CAL,): 0.0,
            (BRK,): 0.0,
            (UNS,): 0.0,
            (PEN,): 1.0,
        },
        "In flight and unobserved-B": {(UNS,): 2 * rate},
    }


EXECUTION_QUERIES = [
    (panel["title"], target)
    for panel, target in targets(load_dashboard("overview"))
    if "flowscope_execution" in target["expr"]
]


def _series(result: list[dict[str, Any]]) -> dict[tuple[str, ...], float]:
    return {
        tuple(v for _, v in sorted(sample["metric"].items())): float(sample["value"][1])
        for sample in result
    }


@pytest.fixture(scope="module")
def expected(scraped: Scraped) -> dict[str, dict[tuple[str, ...], float]]:
    per_batch = OUTCOMES_PER_BATCH + UNOBSERVED_PER_BATCH
    query = scraped.prometheus.query
    rate = float(query("sum(rate(flowscope_executions_total[1m]))", scraped.at)[0]["value"][1])
    hourly = float(
        query("sum(increase(flowscope_executions_total[1h]))", scraped.at)[0]["value"][1]
    )
    rate, hourly = rate / per_batch, hourly / per_batch
    assert 0.5 / 60 < rate < 3 / 60 and 0.5 < hourly < 3, (rate, hourly)
    return _expected(rate, hourly)


def test_every_execution_panel_query_has_a_pinned_value(
    expected: dict[str, dict[tuple[str, ...], float]],
) -> None:
    assert sorted(expected) == sorted(f"{t}-{q['refId']}" for t, q in EXECUTION_QUERIES)


@pytest.mark.parametrize(
    ("title", "query"), EXECUTION_QUERIES, ids=[f"{t}-{q['refId']}" for t, q in EXECUTION_QUERIES]
)
def test_every_execution_panel_shows_exactly_the_injected_outcomes(
    scraped: Scraped,
    expected: dict[str, dict[tuple[str, ...], float]],
    title: str,
    query: dict[str, Any],
) -> None:
    expr = substitute(query["expr"], flow=ALL_FLOWS)
    got = _series(scraped.prometheus.query(expr, time=scraped.at))
    want = expected[f"{title}-{query['refId']}"]
    assert got == pytest.approx(want, rel=1e-6, abs=1e-12), f"{title}: {expr}"


def test_recorded_execution_failure_ratio_matches_the_injected_share(scraped: Scraped) -> None:
    (rule,) = [r for r in recording_rules() if "flowscope_executions" in r["expr"]]
    want = {ORD: 0.25, CAL: 0.0, BRK: 1.0}

    def ratios(result: list[dict[str, Any]]) -> dict[str, float]:
        return {sample["metric"]["flow"]: float(sample["value"][1]) for sample in result}

    result = scraped.prometheus.wait_for(
        rule["record"], lambda r: ratios(r) == pytest.approx(want, rel=1e-6), timeout=15
    )
    assert ratios(result) == pytest.approx(want, rel=1e-6)


def test_execution_duration_exemplars_are_the_launches_traces(scraped: Scraped) -> None:
    (duration,) = [
        t
        for title, t in EXECUTION_QUERIES
        if title.startswith("Execution duration") and t["refId"] == "A"
    ]
    assert duration["exemplar"] is True
    expr = substitute(duration["expr"], flow=ALL_FLOWS)
    series = scraped.prometheus.exemplars(expr, scraped.start - 60, time.time() + 60)
    trace_ids = {e["labels"]["trace_id"] for entry in series for e in entry["exemplars"]}
    assert len(trace_ids) >= 1
    assert trace_ids <= scraped.launch_traces
