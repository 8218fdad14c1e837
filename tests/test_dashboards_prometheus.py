"""Every dashboard query and recording rule, run against a real Prometheus scraping real traffic.

Known traffic goes through ``FlowScopeTransport`` into a fresh registry, a real Prometheus
scrapes it (with the shipped rules loaded), and each panel's PromQL, with Grafana's variables
filled in, must return data; the 400-rate panel must return the injected share of 400s.

The traffic is sent as two identical batches with a scrape in between: every counter then grows
by the same factor between its first and last sample, so ``rate()``'s extrapolation scales every
series alike and ratios of rates are exact.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from flowscope import FlowMetrics, FlowScopeConfig, FlowScopeTransport, serve_metrics

from .prometheus_server import PrometheusServer, free_port
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
#: The rate-limit window the mock platform reports: after both batches it is above 90 % spent.
ALLOWED = 110
ALL_FLOWS = ".*"  # what Grafana sends for the overview's "All"


_answered = itertools.count(1)


def _handler(request: httpx.Request) -> httpx.Response:
    outcome = request.headers["x-test-outcome"]
    if outcome == "timeout":
        raise httpx.ConnectTimeout("connect timed out", request=request)
    # Every answer spends one request of the window, as the platform counts them.
    limits = {
        "inin-ratelimit-allowed": str(ALLOWED),
        "inin-ratelimit-count": str(next(_answered)),
        "inin-ratelimit-reset": "3600",
    }
    if outcome == "400":
        return httpx.Response(400, json=ERROR_BODY, headers=limits)
    if outcome == "429":
        return httpx.Response(429, json=RATE_LIMITED_BODY, headers={"Retry-After": "1", **limits})
    return httpx.Response(
        200,
        headers=limits,
        json={
            "id": "exec-1",
            "name": "run",
            "flowVersion": {"id": "1.0", "selfUri": "/api/v2/flows/f/versions/1.0"},
        },
    )


def _send_batch(client: httpx.Client) -> None:
    for mix in MIXES:
        plan = (
            ["200"] * mix.ok
            + ["400"] * mix.bad_request
            + ["429"] * mix.rate_limited
            + ["timeout"] * mix.timeouts
        )
        for outcome in plan:
            with contextlib.suppress(httpx.TransportError):
                client.post(
                    "/api/v2/flows/executions",
                    json={"flowId": mix.flow_id, "inputData": {"Flow.customerId": "42"}},
                    headers={"x-test-outcome": outcome},
                )


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
        httpx.MockTransport(_handler), config=config, tracer_provider=provider, metrics=metrics
    )
    port = free_port()
    server, thread = serve_metrics(port, "127.0.0.1", registry=registry)
    prometheus = PrometheusServer([f"127.0.0.1:{port}"], scrape_interval="1s", rule_files=[RULES])
    try:
        with httpx.Client(transport=transport, base_url="https://api.mypurecloud.com") as client:
            start = time.time()
            _send_batch(client)
            prometheus.start()
            total = f"sum(flowscope_requests_total{{instance='127.0.0.1:{port}'}})"
            expected = _responses_per_batch()
            prometheus.wait_for(total, lambda r: bool(r) and float(r[0]["value"][1]) == expected)
            _send_batch(client)
            prometheus.wait_for(
                total, lambda r: bool(r) and float(r[0]["value"][1]) == 2 * expected
            )
        yield Scraped(prometheus, time.time(), start)
    finally:
        prometheus.stop()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
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


@pytest.mark.parametrize(
    ("dashboard", "query"), QUERIES, ids=[f"{d}:{_query_id(q)}" for d, q in QUERIES]
)
def test_every_panel_query_returns_data(
    scraped: Scraped, dashboard: str, query: tuple[str, dict[str, Any], str]
) -> None:
    title, _, expr = query
    result = scraped.prometheus.query(expr, time=scraped.at)
    assert result, f"{dashboard} / {title}: {expr!r} returned nothing"
    values = [float(sample["value"][1]) for sample in result]
    assert not all(math.isnan(v) for v in values), f"{title}: only NaN for {expr!r}"


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


def test_rate_limit_panel_shows_the_share_of_the_window_spent_per_host(scraped: Scraped) -> None:
    panel_targets = {p["title"]: t for p, t in targets(load_dashboard("overview"))}
    expr = substitute(panel_targets["Rate-limit budget used per host"]["expr"], flow=ALL_FLOWS)
    result = scraped.prometheus.query(expr, time=scraped.at)
    used = {sample["metric"]["host"]: float(sample["value"][1]) for sample in result}
    assert used == {"api.mypurecloud.com": pytest.approx(2 * _responses_per_batch() / ALLOWED)}


def test_rate_limit_alert_is_evaluated_by_prometheus_and_pending_for_the_spent_host(
    scraped: Scraped,
) -> None:
    # 106 of 110 requests spent: the rule's condition holds; "for: 2m" keeps it pending.
    alerts = scraped.prometheus.wait_for(
        'ALERTS{alertname="FlowScopeRateLimitNearlyExhausted"}', timeout=15
    )
    assert [
        (a["metric"]["host"], a["metric"]["alertstate"], a["metric"]["severity"]) for a in alerts
    ] == [("api.mypurecloud.com", "pending", "warning")]


def test_outcomes_panel_splits_the_flows_calls_as_injected(scraped: Scraped) -> None:
    panel_targets = {p["title"]: t for p, t in targets(load_dashboard("flow-detail"))}
    expr = substitute(panel_targets["Outcomes"]["expr"], flow=DETAIL_FLOW)
    result = scraped.prometheus.query(expr, time=scraped.at)
    rates = {sample["metric"]["outcome"]: float(sample["value"][1]) for sample in result}
    mix = MIXES[0]
    assert set(rates) == {"success", "client_error", "transport_error"}
    relative = {outcome: rate / rates["success"] for outcome, rate in rates.items()}
    assert relative == pytest.approx(
        {
            "success": 1.0,
            "client_error": (mix.bad_request + mix.rate_limited) / mix.ok,
            "transport_error": mix.timeouts / mix.ok,
        },
        rel=1e-6,
    )
