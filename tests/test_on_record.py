"""`on_record`: every flow call's redacted record, handed to user code after the built-in sinks."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from prometheus_client import CollectorRegistry
from PureCloudPlatformClientV2 import ApiClient, ArchitectApi, FlowExecutionLaunchRequest
from PureCloudPlatformClientV2.rest import ApiException

import flowscope
from flowscope import AsyncFlowScopeTransport, CallRecord, FlowMetrics, RecordedError
from flowscope.genesys import FlowScopeHttpClient
from flowscope.sandbox import Sandbox

from .conftest import Spans
from .servers import Reply, ScriptedServer

LAUNCH = "/api/v2/flows/executions"
FLOW_ID = "9b1f3c2e-6a4d-4e8b-9f21-3c7d5a0e8b14"
SECRET = "Q7onRecordSecretToken"
ERROR_BODY = {
    "message": "The request could not be understood by the server due to malformed syntax.",
    "code": "bad.request",
    "status": 400,
    "contextId": "ctx-1",
    "details": [{"errorCode": "UNRECOGNIZED_FIELD", "fieldName": "data"}],
    "messageParams": {},
}
PAYLOAD = {"flowId": FLOW_ID, "data": {"customerId": "C-1"}}


@pytest.fixture
def error_server(server: ScriptedServer) -> ScriptedServer:
    server.replies[LAUNCH] = Reply(
        400,
        [("Content-Type", "application/json"), ("ININ-Correlation-Id", "corr-400")],
        json.dumps(ERROR_BODY).encode(),
    )
    server.replies["/health"] = Reply(200, [("Content-Type", "text/plain")], b"ok")
    return server


def _assert_the_400_record(record: CallRecord, span: ReadableSpan) -> None:
    assert (record.operation, record.method, record.template) == ("launch", "POST", LAUNCH)
    assert (record.flow_id, record.status_code, record.outcome) == (FLOW_ID, 400, "client_error")
    assert record.error == RecordedError(
        kind="genesys",
        code="bad.request",
        message=ERROR_BODY["message"],
        fields=("data",),
        message_params={},
        retry_after=None,
    )
    assert record.correlation_id == "corr-400"
    assert [h.code for h in record.hints] == ["unknown-root-key"]
    assert record.request_body is not None
    assert json.loads(record.request_body.text) == PAYLOAD
    assert record.response_body is not None
    assert json.loads(record.response_body.text) == ERROR_BODY
    assert "header:authorization" in record.redacted_paths
    assert record.trace_id == f"{span.context.trace_id:032x}"
    assert record.span_id == f"{span.context.span_id:016x}"


def test_on_record_gets_one_redacted_record_per_flow_call_on_a_sync_client(
    error_server: ScriptedServer, spans: Spans, metrics: FlowMetrics
) -> None:
    records: list[CallRecord] = []
    with flowscope.instrument(
        httpx.Client(base_url=error_server.url),
        tracer_provider=spans.provider,
        metrics=metrics,
        on_record=records.append,
    ) as client:
        response = client.post(LAUNCH, json=PAYLOAD, headers={"Authorization": f"Bearer {SECRET}"})
        assert client.get("/health").status_code == 200  # not a flow call: no record
    assert len(records) == 1
    _assert_the_400_record(records[0], spans.all()[0])  # the second span is /health's
    assert SECRET not in repr(records[0])
    # The record rode on the response only inside flowscope: the caller's is as it was.
    assert "flowscope.record" not in response.extensions
    assert response.json() == ERROR_BODY


async def test_on_record_gets_one_redacted_record_per_flow_call_on_an_async_client(
    error_server: ScriptedServer, spans: Spans, metrics: FlowMetrics
) -> None:
    records: list[CallRecord] = []
    transport = AsyncFlowScopeTransport(
        tracer_provider=spans.provider, metrics=metrics, on_record=records.append
    )
    async with httpx.AsyncClient(base_url=error_server.url, transport=transport) as client:
        response = await client.post(
            LAUNCH, json=PAYLOAD, headers={"Authorization": f"Bearer {SECRET}"}
        )
    assert len(records) == 1
    _assert_the_400_record(records[0], spans.one())
    assert "flowscope.record" not in response.extensions


def test_on_record_runs_after_the_span_metrics_and_log_sinks(
    error_server: ScriptedServer, spans: Spans, metrics: FlowMetrics, registry: CollectorRegistry
) -> None:
    seen: list[tuple[float | None, Any]] = []
    labels = {"flow": FLOW_ID, "operation": "launch", "method": "POST", "status_code": "400"}

    def on_record(record: CallRecord) -> None:
        attributes = getattr(trace.get_current_span(), "attributes", None) or {}
        counted = registry.get_sample_value("flowscope_requests_total", labels)
        seen.append((counted, attributes.get("flow.id")))

    transport = flowscope.FlowScopeTransport(
        tracer_provider=spans.provider, metrics=metrics, on_record=on_record
    )
    with httpx.Client(base_url=error_server.url, transport=transport) as client:
        client.post(LAUNCH, json=PAYLOAD)
    # The call was already counted, and its span already enriched, when on_record ran.
    assert seen == [(1.0, FLOW_ID)]


def test_a_raising_on_record_is_counted_under_sink_and_never_reaches_the_caller(
    error_server: ScriptedServer, spans: Spans, metrics: FlowMetrics, registry: CollectorRegistry
) -> None:
    def on_record(record: CallRecord) -> None:
        raise RuntimeError(f"sink bug while handling {record.url}")

    with httpx.Client(base_url=error_server.url) as bare:
        expected = bare.post(LAUNCH, json=PAYLOAD)
    with flowscope.instrument(
        httpx.Client(base_url=error_server.url),
        tracer_provider=spans.provider,
        metrics=metrics,
        on_record=on_record,
    ) as client:
        responses = [client.post(LAUNCH, json=PAYLOAD) for _ in range(2)]
    assert [(r.status_code, r.content) for r in responses] == [
        (expected.status_code, expected.content)
    ] * 2
    assert registry.get_sample_value("flowscope_internal_errors_total", {"stage": "sink"}) == 2.0
    labels = {"flow": FLOW_ID, "operation": "launch", "method": "POST", "status_code": "400"}
    assert registry.get_sample_value("flowscope_requests_total", labels) == 2.0
    assert [s.status.status_code.name for s in spans.all()] == ["ERROR", "ERROR"]


def test_on_record_hears_of_transport_failures(spans: Spans, metrics: FlowMetrics) -> None:
    records: list[CallRecord] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    transport = flowscope.FlowScopeTransport(
        httpx.MockTransport(refuse),
        tracer_provider=spans.provider,
        metrics=metrics,
        on_record=records.append,
    )
    with (
        httpx.Client(base_url="http://127.0.0.1:9", transport=transport) as client,
        pytest.raises(httpx.ConnectError),
    ):
        client.post(LAUNCH, json={"flowId": FLOW_ID})
    assert len(records) == 1
    record = records[0]
    assert (record.status_code, record.outcome) == (None, "transport_error")
    assert (record.exception_type, record.exception_message) == (
        "ConnectError",
        "connection refused",
    )
    assert record.flow_id == FLOW_ID


def test_on_record_works_on_the_genesys_sdk_client(spans: Spans, metrics: FlowMetrics) -> None:
    records: list[CallRecord] = []
    with Sandbox(seed=7) as sandbox:
        flow = sandbox.flows[0].id
        api = ApiClient(host=sandbox.url)
        with FlowScopeHttpClient(
            tracer_provider=spans.provider, metrics=metrics, on_record=records.append
        ) as client:
            api.set_http_client(client)
            api.get_client_credentials_token(sandbox.client_id, sandbox.client_secret)
            architect = ArchitectApi(api)
            launch = FlowExecutionLaunchRequest()
            launch.flow_id = flow
            launch.input_data = {"customerId": "C"}
            with pytest.raises(ApiException):
                architect.post_flows_executions(launch)
    assert [(r.operation, r.status_code) for r in records] == [("token", 200), ("launch", 400)]
    refused = records[1]
    assert refused.flow_id == flow
    assert refused.error_code == "invalid.value"
    assert refused.error_fields == ("inputData.customerId",)
    assert [h.code for h in refused.hints] == ["input-key-prefix"]
    assert sandbox.client_secret not in repr(records)
