"""SPEC §12's series budget: the README's per-metric arithmetic, checked against what the
worst-case traffic of the cardinality benchmark really exports (at small bounds, to stay fast),
and evaluated at the defaults."""

from __future__ import annotations

import httpx
from benchmarks._cardinality import (
    EXECUTION_STATUSES,
    STATUSES,
    TRANSPORT_FAILURES,
    exposed_series,
    platform_answer,
    worst_case_traffic,
)
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from flowscope import FlowMetrics, FlowScopeTransport
from flowscope._metrics import DURATION_BUCKETS, EXECUTION_DURATION_BUCKETS, RETRY_AFTER_BUCKETS


def budget(max_flows: int, max_fields: int, max_hosts: int) -> dict[str, int]:
    """The README's arithmetic: series per metric when every bound is reached.

    ``F`` flow values (the limit and ``__other__``) on launch and get_flow; get_execution
    errors and transport failures carry ``__unknown__`` (the flow is read from a success), and
    token calls ``__none__``.
    """
    flows = max_flows + 1
    statuses = len(STATUSES)
    errors = statuses - 1
    exceptions = len(TRANSPORT_FAILURES)
    per_histogram = {
        "duration": len(DURATION_BUCKETS) + 3,  # each bucket, +Inf, _sum, _count
        "retry": len(RETRY_AFTER_BUCKETS) + 3,
        "execution": len(EXECUTION_DURATION_BUCKETS) + 3,
    }
    outcomes = len(EXECUTION_STATUSES)  # each with its one error code (or __none__)
    return {
        "flowscope_requests": 2 * flows * statuses + (flows + errors) + statuses,
        "flowscope_errors": 2 * flows * errors + errors + errors,
        "flowscope_request_duration_seconds": (flows + 2) * per_histogram["duration"],
        "flowscope_retry_after_seconds": (2 * flows + 2) * per_histogram["retry"],
        "flowscope_transport_errors": (2 * flows + 2) * exceptions,
        "flowscope_error_fields": 2 * flows + (max_fields + 1) + 1,
        "flowscope_ratelimit_allowed": max_hosts + 1,
        "flowscope_ratelimit_used": max_hosts + 1,
        "flowscope_ratelimit_reset_seconds": max_hosts + 1,
        "flowscope_label_overflow": 4,  # flow, field, error_code, host
        "flowscope_executions": flows * outcomes,
        "flowscope_execution_duration_seconds": flows * outcomes * per_histogram["execution"],
        "flowscope_executions_in_flight": flows,
    }


def test_worst_case_traffic_exports_exactly_the_readme_arithmetic() -> None:
    registry = CollectorRegistry()
    metrics = FlowMetrics(registry, max_flows=12, max_fields=5, max_hosts=3)
    transport = FlowScopeTransport(
        httpx.MockTransport(platform_answer), metrics=metrics, tracer_provider=TracerProvider()
    )
    with httpx.Client(transport=transport) as client:
        worst_case_traffic(client, flows=15, hosts=5)
    assert exposed_series(registry) == budget(max_flows=12, max_fields=5, max_hosts=3)


def test_worst_case_at_the_defaults_is_the_readme_figure() -> None:
    at_defaults = budget(max_flows=200, max_fields=100, max_hosts=40)
    executions = sum(v for k, v in at_defaults.items() if "execution" in k)
    # The README's figures: the call metrics, and what following executions adds to them.
    assert (sum(at_defaults.values()) - executions, executions) == (19_230, 14_673)
