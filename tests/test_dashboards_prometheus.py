"""Every dashboard query and recording rule, run against a real Prometheus scraping real traffic.

Known traffic goes through ``FlowScopeTransport`` to the loopback flow API and into a fresh
registry; a real Prometheus scrapes it (with the shipped rules loaded), and every panel's PromQL,
with Grafana's variables filled in, must return exactly what the injected traffic implies.

The traffic is sent as two identical batches, and Prometheus scrapes a snapshot of the registry
taken after each batch: every counter series is first seen at its per-batch count and then at
twice that, at the same instants. ``rate()``'s extrapolation then scales every series by the same
factor, so each rate panel must read that one factor times the injected count. Every call takes
between 1.05 s and 2.5 s (the server answers after 1.05 s, or stalls into a 1.2 s read
timeout), so every observation lands in the (1, 2.5] latency bucket and each quantile is exact.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST, generate_latest

from flowscope import FlowMetrics, FlowScopeConfig, FlowScopeTransport
from flowscope._metrics import DURATION_BUCKETS

from .prometheus_server import PrometheusServer
from .servers import Reply, ScriptedServer
from .test_dashboards import RULES, load_dashboard, recording_rules, substitute, targets

ERROR_BODY = {
    "code": "bad.request",
    "message": "Invalid input",
    "status": 400,
    "details": [{"fieldName": "data"}],
}
RATE_LIMITED_BODY = {"code": "too.many.requests", "message": "Rate limit exceeded", "status": 429}


@dataclass(frozen=True)
class Mix:
    """One batch of launches of one flow, by what the server does with them."""

    flow_id: str
    label: str
    ok: int
    bad_request: int
    rate_limited: int
    timeouts: int

    @property
    def ratio_400(self) -> float:
        return self.bad_request / (self.ok + self.bad_request + self.rate_limited)


# "billing" is named through flow_names; the other flow is known only by its id.
MIXES = (
    Mix("3b0c6a52-billing", "billing", ok=16, bad_request=4, rate_limited=2, timeouts=1),
    Mix(
        "9e2f41d7-0d7a-4c55", "9e2f41d7-0d7a-4c55", ok=27, bad_request=3, rate_limited=1, timeouts=2
    ),
)
DETAIL_FLOW = "billing"
ALL_FLOWS = ".*"  # what Grafana sends for the overview's "All"


LAUNCH = "/api/v2/flows/executions"
#: Every call takes this long at least: the server's delay before answering...
CALL_SECONDS = 1.05
#: ...or, when the server stalls, the client's read timeout.
STALL_TIMEOUT = httpx.Timeout(60.0, read=1.2)
#: The latency bucket every call lands in, whatever the machine's load (up to 1.45 s of it).
BUCKET = (1.0, 2.5)
OPENMETRICS = [("Content-Type", CONTENT_TYPE_LATEST)]
OK_BODY = {
    "id": "exec-1",
    "name": "run",
    "flowVersion": {"id": "1.0", "selfUri": "/api/v2/flows/f/versions/1.0"},
}


def _reply(body: bytes) -> Reply:
    outcome = json.loads(body)["inputData"]["Flow.outcome"]
    headers = [("Content-Type", "application/json")]
    if outcome == "timeout":
        return Reply(stall=True)
    if outcome == "400":
        return Reply(400, headers, json.dumps(ERROR_BODY).encode(), delay=CALL_SECONDS)
    if outcome == "429":
        headers.append(("Retry-After", "1"))
        return Reply(429, headers, json.dumps(RATE_LIMITED_BODY).encode(), delay=CALL_SECONDS)
    return Reply(200, headers, json.dumps(OK_BODY).encode(), delay=CALL_SECONDS)


def _send_batch(client: httpx.Client) -> None:
    def send(flow_id: str, outcome: str) -> None:
        with contextlib.suppress(httpx.ReadTimeout):
            client.post(
                LAUNCH,
                json={"flowId": flow_id, "inputData": {"Flow.outcome": outcome}},
                timeout=STALL_TIMEOUT if outcome == "timeout" else 60.0,
            )

    calls = [
        (mix.flow_id, outcome)
        for mix in MIXES
        for outcome in ["200"] * mix.ok
        + ["400"] * mix.bad_request
        + ["429"] * mix.rate_limited
        + ["timeout"] * mix.timeouts
    ]
    with ThreadPoolExecutor(max_workers=24) as pool:
        list(pool.map(lambda call: send(*call), calls))


def _responses_per_batch() -> int:
    return sum(m.ok + m.bad_request + m.rate_limited for m in MIXES)


@dataclass
class Scraped:
    prometheus: PrometheusServer
    #: A time at which every panel's window holds samples from before and after the second batch.
    at: float
    start: float


@pytest.fixture(scope="module")
def scraped() -> Iterator[Scraped]:
    registry = CollectorRegistry()
    metrics = FlowMetrics(registry)
    provider = TracerProvider()  # samples everything, so every sample carries an exemplar
    config = FlowScopeConfig(flow_names={MIXES[0].flow_id: MIXES[0].label})
    transport = FlowScopeTransport(
        httpx.HTTPTransport(limits=httpx.Limits(max_connections=24)),
        config=config,
        tracer_provider=provider,
        metrics=metrics,
    )

    def publish() -> None:
        """What Prometheus scrapes from now on: the registry as it is at this instant."""
        exposition = generate_latest(registry)
        exporter.replies["/metrics"] = Reply(
            200, [("Content-Type", CONTENT_TYPE_LATEST)], exposition
        )

    with ScriptedServer() as flow_api, ScriptedServer() as exporter:
        flow_api.replies[LAUNCH] = _reply
        exporter.replies["/metrics"] = Reply(
            200, [("Content-Type", CONTENT_TYPE_LATEST)], b"# EOF\n"
        )
        instance = exporter.url.removeprefix("http://")
        prometheus = PrometheusServer([instance], scrape_interval="1s", rule_files=[RULES])
        try:
            with httpx.Client(transport=transport, base_url=flow_api.url) as client:
                start = time.time()
                _send_batch(client)
                publish()
                prometheus.start()
                total = f"sum(flowscope_requests_total{{instance='{instance}'}})"
                expected = _responses_per_batch()
                prometheus.wait_for(
                    total, lambda r: bool(r) and float(r[0]["value"][1]) == expected
                )
                _send_batch(client)
                publish()
                prometheus.wait_for(
                    total, lambda r: bool(r) and float(r[0]["value"][1]) == 2 * expected
                )
            yield Scraped(prometheus, time.time(), start)
        finally:
            prometheus.stop()
            provider.shutdown()


def _panel_queries(name: str, flow: str) -> list[tuple[str, dict[str, Any], str]]:
    return [
        (panel["title"], target, substitute(target["expr"], flow=flow))
        for panel, target in targets(load_dashboard(name))
    ]


def _query_id(query: tuple[str, dict[str, Any], str]) -> str:
    return f"{query[0]}-{query[1]['refId']}"


QUERIES = [("overview", query) for query in _panel_queries("overview", ALL_FLOWS)] + [
    ("flow-detail", query) for query in _panel_queries("flow-detail", DETAIL_FLOW)
]


def _quantile(q: float) -> float:
    """What histogram_quantile gives when every observation is in BUCKET (linear inside it)."""
    low, high = BUCKET
    return low + (high - low) * q


def _expected_panels(rate: float, hourly: float) -> dict[str, dict[tuple[str, ...], float]]:
    """Each panel query's series (label values, sorted by label name) -> value, from MIXES.

    ``rate`` is what rate(...[1m]) reads per call injected in one batch, ``hourly`` the same for
    increase(...[1h]): one factor each for every series (see the module docstring).
    """
    billing, other = MIXES
    b, o = billing.label, other.label
    responses = {m.label: m.ok + m.bad_request + m.rate_limited for m in MIXES}
    latency = {"A": _quantile(0.5), "B": _quantile(0.95), "C": _quantile(0.99)}
    # increase(...[1m]) of each bucket: none below BUCKET, every billing call from its top up.
    billing_calls = rate * 60 * (responses[b] + billing.timeouts)
    distribution = {
        (repr(float(bound)),): 0.0 if bound < BUCKET[1] else billing_calls
        for bound in DURATION_BUCKETS
    }
    distribution[("+Inf",)] = billing_calls
    return {
        "overview:400 rate per flow-A": {(m.label,): m.ratio_400 for m in MIXES},
        "overview:Worst flow by 400 rate-A": {(b,): billing.ratio_400},
        "overview:Requests by status code-A": {
            ("200",): rate * (billing.ok + other.ok),
            ("400",): rate * (billing.bad_request + other.bad_request),
            ("429",): rate * (billing.rate_limited + other.rate_limited),
        },
        "overview:Top error codes-A": {
            ("bad.request", "400"): hourly * (billing.bad_request + other.bad_request),
            ("too.many.requests", "429"): hourly * (billing.rate_limited + other.rate_limited),
        },
        "overview:Top failing fields-A": {
            ("data", b): hourly * billing.bad_request,
            ("data", o): hourly * other.bad_request,
        },
        **{f"overview:Latency p50 / p95 / p99-{ref}": {(): v} for ref, v in latency.items()},
        "overview:429 rate (rate limited)-A": {
            (b,): rate * billing.rate_limited,
            (o,): rate * other.rate_limited,
        },
        "overview:Transport errors-A": {
            ("ReadTimeout", b): rate * billing.timeouts,
            ("ReadTimeout", o): rate * other.timeouts,
        },
        "overview:Label overflow (cardinality guard)-A": {
            ("error_code",): 0.0,
            ("field",): 0.0,
            ("flow",): 0.0,
        },
        "flow-detail:Request rate-A": {(): rate * responses[b]},
        "flow-detail:400 rate-A": {(b,): billing.ratio_400},
        "flow-detail:p95 latency-A": {(): _quantile(0.95)},
        "flow-detail:Transport errors in range-A": {(): hourly * billing.timeouts},
        "flow-detail:Requests by operation and status-A": {
            ("launch", "200"): rate * billing.ok,
            ("launch", "400"): rate * billing.bad_request,
            ("launch", "429"): rate * billing.rate_limited,
        },
        "flow-detail:400 rate by operation-A": {("launch",): billing.ratio_400},
        "flow-detail:Outcomes-A": {
            ("client_error",): rate * (billing.bad_request + billing.rate_limited),
            ("success",): rate * billing.ok,
            ("transport_error",): rate * billing.timeouts,
        },
        "flow-detail:429 rate (rate limited)-A": {("launch",): rate * billing.rate_limited},
        "flow-detail:Transport errors-A": {("ReadTimeout", "launch"): rate * billing.timeouts},
        **{f"flow-detail:Latency p50 / p95 / p99-{ref}": {(): v} for ref, v in latency.items()},
        "flow-detail:Latency distribution-A": distribution,
        "flow-detail:Error codes-A": {
            ("bad.request", "launch", "400"): hourly * billing.bad_request,
            ("too.many.requests", "launch", "429"): hourly * billing.rate_limited,
        },
        "flow-detail:Failing fields-A": {("data", "launch"): hourly * billing.bad_request},
        "flow-detail:Error field rate-A": {("data",): rate * billing.bad_request},
    }


def _series(result: list[dict[str, Any]]) -> dict[tuple[str, ...], float]:
    return {
        tuple(v for _, v in sorted(sample["metric"].items())): float(sample["value"][1])
        for sample in result
    }


@pytest.fixture(scope="module")
def expected_panels(scraped: Scraped) -> dict[str, dict[tuple[str, ...], float]]:
    """The expectations, with the two factors read from the total of requests."""
    per_batch = _responses_per_batch()
    total_rate = scraped.prometheus.query(
        "sum(rate(flowscope_requests_total[1m]))", time=scraped.at
    )
    total_hourly = scraped.prometheus.query(
        "sum(increase(flowscope_requests_total[1h]))", time=scraped.at
    )
    rate = float(total_rate[0]["value"][1]) / per_batch
    hourly = float(total_hourly[0]["value"][1]) / per_batch
    # Two batches in well under a minute: each factor is of the order of one batch per window.
    assert 0.5 / 60 < rate < 3 / 60 and 0.5 < hourly < 3, (rate, hourly)
    return _expected_panels(rate, hourly)


def test_every_panel_query_has_a_pinned_value(
    expected_panels: dict[str, dict[tuple[str, ...], float]],
) -> None:
    assert sorted(expected_panels) == sorted(f"{d}:{_query_id(q)}" for d, q in QUERIES)


@pytest.mark.parametrize(
    ("dashboard", "query"), QUERIES, ids=[f"{d}:{_query_id(q)}" for d, q in QUERIES]
)
def test_every_panel_shows_exactly_the_injected_traffic(
    scraped: Scraped,
    expected_panels: dict[str, dict[tuple[str, ...], float]],
    dashboard: str,
    query: tuple[str, dict[str, Any], str],
) -> None:
    title, _, expr = query
    got = _series(scraped.prometheus.query(expr, time=scraped.at))
    expected = expected_panels[f"{dashboard}:{_query_id(query)}"]
    assert got == pytest.approx(expected, rel=1e-6, abs=1e-12), f"{dashboard} / {title}: {expr}"


def test_400_rate_panel_returns_the_injected_share_of_400s_per_flow(scraped: Scraped) -> None:
    panel_targets = {p["title"]: t for p, t in targets(load_dashboard("overview"))}
    expr = substitute(panel_targets["400 rate per flow"]["expr"], flow=ALL_FLOWS)
    result = scraped.prometheus.query(expr, time=scraped.at)
    ratios = {sample["metric"]["flow"]: float(sample["value"][1]) for sample in result}
    assert ratios == pytest.approx({m.label: m.ratio_400 for m in MIXES}, rel=1e-6)


def test_worst_flow_stat_names_the_flow_with_the_highest_400_rate(scraped: Scraped) -> None:
    panel_targets = {p["title"]: t for p, t in targets(load_dashboard("overview"))}
    expr = substitute(panel_targets["Worst flow by 400 rate"]["expr"], flow=ALL_FLOWS)
    result = scraped.prometheus.query(expr, time=scraped.at)
    worst = max(MIXES, key=lambda m: m.ratio_400)
    assert [sample["metric"]["flow"] for sample in result] == [worst.label]


def test_flow_variable_lists_every_flow(scraped: Scraped) -> None:
    # label_values(flowscope_requests_total, flow), as Grafana resolves it.
    result = scraped.prometheus.query("count by (flow) (flowscope_requests_total)")
    assert {sample["metric"]["flow"] for sample in result} == {m.label for m in MIXES}


@pytest.mark.parametrize("rule", recording_rules(), ids=lambda rule: rule["record"])
def test_every_recording_rule_is_evaluated_and_returns_data(
    scraped: Scraped, rule: dict[str, Any]
) -> None:
    assert scraped.prometheus.query(rule["expr"], time=scraped.at), rule["expr"]
    recorded = scraped.prometheus.wait_for(rule["record"], timeout=15)
    assert {sample["metric"]["flow"] for sample in recorded} == {m.label for m in MIXES}


def test_recorded_400_ratio_matches_the_injected_share(scraped: Scraped) -> None:
    expected = {m.label: m.ratio_400 for m in MIXES}

    def ratios(result: list[dict[str, Any]]) -> dict[str, float]:
        return {sample["metric"]["flow"]: float(sample["value"][1]) for sample in result}

    # A rule evaluated between two scrapes of the second batch saw part of it; the next
    # evaluation after the last scrape sees all of it.
    result = scraped.prometheus.wait_for(
        "flow:flowscope_requests_400:ratio_rate5m",
        lambda r: ratios(r) == pytest.approx(expected, rel=1e-6),
        timeout=15,
    )
    assert ratios(result) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("dashboard", ["overview", "flow-detail"])
def test_latency_exemplars_carry_trace_ids_for_the_jaeger_link(
    scraped: Scraped, dashboard: str
) -> None:
    flow = ALL_FLOWS if dashboard == "overview" else DETAIL_FLOW
    exemplar_targets = [t for _, t in targets(load_dashboard(dashboard)) if t.get("exemplar")]
    assert exemplar_targets
    for target in exemplar_targets:
        expr = substitute(target["expr"], flow=flow)
        series = scraped.prometheus.exemplars(expr, scraped.start - 60, time.time() + 60)
        trace_ids = [
            exemplar["labels"].get("trace_id", "")
            for entry in series
            for exemplar in entry["exemplars"]
        ]
        assert trace_ids, expr
        assert all(len(trace_id) == 32 for trace_id in trace_ids), trace_ids
