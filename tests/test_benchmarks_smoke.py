"""Behaviours the benchmarks found and the fixes they led to; the benchmarks themselves run in
``make test`` through ``python -m benchmarks --smoke``."""

from __future__ import annotations

import json
import tracemalloc

from prometheus_client import CollectorRegistry

from flowscope import CallRecord, FlowMetrics, RecordedError, Redactor

CUT_ERROR_BODY = (
    '{"message":"execution failed","code":"bad.request","status":400,"text":"'
    + "0123456789abcdef" * 4096
)  # a 64 KiB capture that ends inside a string, as a cut error body does


def test_redacting_a_cut_error_body_takes_no_memory_per_character() -> None:
    redactor = Redactor()
    tracemalloc.start()
    try:
        redacted = redactor.body(CUT_ERROR_BODY, "application/json", where="response.body")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert redacted.value == CUT_ERROR_BODY
    assert peak < 1 << 20, f"{peak:,} bytes to redact {len(CUT_ERROR_BODY):,} characters"


def test_a_secret_is_redacted_every_time_it_is_seen() -> None:
    redactor = Redactor()
    clean = '{"code":"bad.request","fieldName":"inputData.Flow.customerId"}'
    secret = "access_token=abcdef0123456789abcdef"
    for _ in range(3):
        assert redactor.text(secret).value == "access_token=[REDACTED]"
        assert redactor.body(clean, "application/json").value == clean
        assert json.loads(redactor.body('{"client_secret":"s3cr3t"}', None).value) == {
            "client_secret": "[REDACTED]"
        }


def test_repeated_calls_count_in_the_same_series() -> None:
    registry = CollectorRegistry()
    metrics = FlowMetrics(registry)
    record = CallRecord(
        operation="launch",
        template="/api/v2/flows/executions",
        method="POST",
        flow_id="flow-1",
        flow_name=None,
        flow_version=None,
        execution_id=None,
        url="https://api.mypurecloud.com/api/v2/flows/executions",
        status_code=400,
        outcome="client_error",
        duration_s=0.2,
        error=RecordedError(kind="genesys", code="bad.request", fields=("data",)),
    )
    for _ in range(3):
        metrics.observe(record)
    labels = {"flow": "flow-1", "operation": "launch"}
    assert (
        registry.get_sample_value(
            "flowscope_requests_total", {**labels, "method": "POST", "status_code": "400"}
        )
        == 3
    )
    assert (
        registry.get_sample_value(
            "flowscope_errors_total", {**labels, "status_code": "400", "error_code": "bad.request"}
        )
        == 3
    )
    assert (
        registry.get_sample_value("flowscope_error_fields_total", {**labels, "field": "data"}) == 3
    )
    assert (
        registry.get_sample_value(
            "flowscope_request_duration_seconds_count", {**labels, "outcome": "client_error"}
        )
        == 3
    )
