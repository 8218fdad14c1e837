"""SPEC §11: the platform's rate-limit headers and a 429's Retry-After, on the span and in the
metrics, from the sandbox's real counts over loopback HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from flowscope import FlowMetrics, FlowScopeTransport
from flowscope.sandbox import Sandbox

from .conftest import LogCapture, Spans

LAUNCH = "/api/v2/flows/executions"
ORDER_STATUS = "9b1f3c2e-6a4d-4e8b-9f21-3c7d5a0e8b14"
GAUGES = ("flowscope_ratelimit_allowed", "flowscope_ratelimit_used")
RESET = "flowscope_ratelimit_reset_seconds"


def exposed(registry: CollectorRegistry) -> dict[str, dict[str, float]]:
    """``{metric: {host: value}}`` for the three gauges, read back from the text exposition."""
    text = generate_latest(registry).decode()
    found: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name in (*GAUGES, RESET):
            found[family.name] = {s.labels["host"]: s.value for s in family.samples}
    return found


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(rate_limit_per_minute=7, seed=3) as running:
        yield running


def _client(
    transport: httpx.BaseTransport, base_url: str, registry: CollectorRegistry, spans: Spans
) -> httpx.Client:
    wrapped = FlowScopeTransport(
        transport, metrics=FlowMetrics.for_registry(registry), tracer_provider=spans.provider
    )
    return httpx.Client(transport=wrapped, base_url=base_url)


def test_sandbox_counts_become_the_last_values_per_host_on_metrics_and_span(
    sandbox: Sandbox, registry: CollectorRegistry, spans: Spans
) -> None:
    headers = {"Authorization": f"Bearer {sandbox.issue_token()}"}
    payload = {"flowId": ORDER_STATUS, "inputData": {"Flow.customerId": "C-1"}}
    with _client(httpx.HTTPTransport(), sandbox.url, registry, spans) as client:
        answers = [client.post(LAUNCH, json=payload, headers=headers) for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    last = answers[-1].headers
    assert (last["inin-ratelimit-count"], last["inin-ratelimit-allowed"]) == ("5", "7")

    gauges = exposed(registry)
    assert gauges["flowscope_ratelimit_allowed"] == {"127.0.0.1": 7.0}
    assert gauges["flowscope_ratelimit_used"] == {"127.0.0.1": 5.0}
    # Counts down from what the last answer said, at most 60 s (the platform's window).
    (reset,) = gauges[RESET].values()
    assert 0 < reset <= float(last["inin-ratelimit-reset"]) <= 60

    attributes = spans.all()[-1].attributes or {}
    assert attributes["genesys.ratelimit.allowed"] == 7
    assert attributes["genesys.ratelimit.count"] == 5
    assert attributes["genesys.ratelimit.reset"] == float(last["inin-ratelimit-reset"])
    assert "http.response.retry_after_s" not in attributes


def test_a_429s_retry_after_goes_on_the_span_the_log_and_into_the_histogram(
    sandbox: Sandbox, registry: CollectorRegistry, spans: Spans, flowscope_logs: LogCapture
) -> None:
    headers = {"Authorization": f"Bearer {sandbox.issue_token()}"}
    payload = {"flowId": ORDER_STATUS}
    with _client(httpx.HTTPTransport(), sandbox.url, registry, spans) as client:
        answers = [client.post(LAUNCH, json=payload, headers=headers) for _ in range(8)]
    assert [a.status_code for a in answers] == [200] * 7 + [429]
    retry_after = float(answers[-1].headers["Retry-After"])

    attributes = spans.all()[-1].attributes or {}
    assert attributes["http.response.retry_after_s"] == retry_after
    assert attributes["genesys.ratelimit.count"] == 8
    labels = {"flow": ORDER_STATUS, "operation": "launch"}
    assert registry.get_sample_value("flowscope_retry_after_seconds_count", labels) == 1
    assert registry.get_sample_value("flowscope_retry_after_seconds_sum", labels) == retry_after
    (warning,) = [r for r in flowscope_logs.records if r.levelname == "WARNING"]
    report = warning.flowscope  # type: ignore[attr-defined]
    assert (report["host"], report["retry_after_s"]) == ("127.0.0.1", retry_after)
    assert report["ratelimit"] == {
        "allowed": 7,
        "count": 8,
        "reset_s": float(answers[-1].headers["inin-ratelimit-reset"]),
    }
    # The 429 still counts in the window: used is above allowed.
    assert exposed(registry)["flowscope_ratelimit_used"] == {"127.0.0.1": 8.0}


def _answer(headers: dict[str, str], status: int = 200) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(status, headers=headers, json={}))


def test_retry_after_as_an_http_date_is_the_seconds_left(
    registry: CollectorRegistry, spans: Spans
) -> None:
    when = datetime.now(timezone.utc) + timedelta(seconds=120)
    transport = _answer({"Retry-After": format_datetime(when, usegmt=True)}, status=429)
    with _client(transport, "https://api.mypurecloud.de", registry, spans) as client:
        client.post(LAUNCH, json={"flowId": "f"})
    waited = (spans.one().attributes or {})["http.response.retry_after_s"]
    assert isinstance(waited, float)
    assert 100 < waited <= 120


def test_hosts_are_kept_apart_and_an_elapsed_window_reads_as_unused(
    registry: CollectorRegistry, spans: Spans
) -> None:
    de = {"inin-ratelimit-allowed": "3000", "inin-ratelimit-count": "2990"}
    ie = {**de, "inin-ratelimit-count": "12", "inin-ratelimit-reset": "0.2"}
    with _client(_answer(de), "https://api.mypurecloud.de", registry, spans) as client:
        client.get("/api/v2/flows/flow-1")
    with _client(_answer(ie), "https://api.mypurecloud.ie", registry, spans) as client:
        client.get("/api/v2/flows/flow-1")
    before = exposed(registry)
    assert before["flowscope_ratelimit_used"] == {
        "api.mypurecloud.de": 2990.0,
        "api.mypurecloud.ie": 12.0,
    }
    assert set(before[RESET]) == {"api.mypurecloud.ie"}  # .de sent no reset header
    time.sleep(0.3)  # the .ie window starts again
    after = exposed(registry)
    assert after["flowscope_ratelimit_used"] == {
        "api.mypurecloud.de": 2990.0,
        "api.mypurecloud.ie": 0.0,
    }
    assert after[RESET] == {"api.mypurecloud.ie": 0.0}
    assert after["flowscope_ratelimit_allowed"] == {
        "api.mypurecloud.de": 3000.0,
        "api.mypurecloud.ie": 3000.0,
    }


def test_non_numeric_rate_limit_headers_are_left_out(
    registry: CollectorRegistry, spans: Spans
) -> None:
    odd = {
        # Beyond an int64: as a span attribute it would fail the export of the whole batch.
        "inin-ratelimit-allowed": "9" * 30,
        "inin-ratelimit-count": "-3",
        "inin-ratelimit-reset": "soon",
    }
    with _client(_answer(odd), "https://api.mypurecloud.jp", registry, spans) as client:
        response = client.get("/api/v2/flows/flow-1")
    assert response.status_code == 200
    attributes = spans.one().attributes or {}
    assert not [key for key in attributes if key.startswith("genesys.ratelimit")]
    assert exposed(registry) == {name: {} for name in (*GAUGES, RESET)}


def test_the_sandbox_reports_every_token_request_it_counts(sandbox: Sandbox) -> None:
    with httpx.Client(base_url=sandbox.url) as client:
        refused = client.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=("nobody", "wrong")
        )
        granted = client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(sandbox.client_id, sandbox.client_secret),
        )
    assert (refused.status_code, granted.status_code) == (401, 200)
    counts = [
        (r.headers["inin-ratelimit-count"], r.headers["inin-ratelimit-allowed"])
        for r in (refused, granted)
    ]
    assert counts == [("1", "300"), ("2", "300")]
