"""`setup_tracing`: one call to a provider whose spans reach an OTLP/HTTP collector."""

from __future__ import annotations

import json

import httpx
import pytest
from prometheus_client import CollectorRegistry

import flowscope
from flowscope import FlowMetrics, FlowScopeTransport

from .otlp_receiver import OTLPReceiver, any_value, span_attributes


@pytest.mark.parametrize("form", ["base", "full"])
def test_setup_tracing_exports_flow_spans_over_otlp_http(form: str) -> None:
    with OTLPReceiver() as receiver:
        endpoint = receiver.endpoint
        if form == "base":  # the collector's base URL, as Jaeger's docs give it
            endpoint = endpoint.removesuffix("/v1/traces")
        provider = flowscope.setup_tracing(
            "order-service", otlp_endpoint=endpoint, set_global=False
        )
        try:
            transport = FlowScopeTransport(
                httpx.MockTransport(
                    lambda r: httpx.Response(400, json={"code": "bad.request", "message": "x"})
                ),
                tracer_provider=provider,
                metrics=FlowMetrics(CollectorRegistry()),
            )
            with httpx.Client(transport=transport) as client:
                client.post(
                    "https://api.mypurecloud.com/api/v2/flows/executions",
                    json={"flowId": "f-1"},
                )
            provider.force_flush()
            (span,) = receiver.wait_for_spans(1)
        finally:
            provider.shutdown()
        attributes = span_attributes(span)
        assert attributes["flow.id"] == "f-1"
        assert attributes["flow.error.code"] == "bad.request"
        resources = [rs.resource for req in receiver.requests for rs in req.resource_spans]
        names = {
            any_value(a.value) for r in resources for a in r.attributes if a.key == "service.name"
        }
        assert names == {"order-service"}


def test_setup_tracing_reads_the_standard_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    with OTLPReceiver() as receiver:
        monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
        monkeypatch.setenv(
            "OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.removesuffix("/v1/traces")
        )
        provider = flowscope.setup_tracing("svc", set_global=False)
        try:
            provider.get_tracer("t").start_span("s").end()
            provider.force_flush()
            assert len(receiver.wait_for_spans(1)) == 1
        finally:
            provider.shutdown()


def test_setup_tracing_console_prints_each_flow_span_as_it_ends(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from flowscope.sandbox import Sandbox

    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    provider = flowscope.setup_tracing("order-service", console=True, set_global=False)
    try:
        with Sandbox() as sandbox:
            transport = FlowScopeTransport(
                tracer_provider=provider, metrics=FlowMetrics(CollectorRegistry())
            )
            headers = {"Authorization": f"Bearer {sandbox.issue_token()}"}
            with httpx.Client(base_url=sandbox.url, transport=transport, headers=headers) as c:
                c.post(
                    "/api/v2/flows/executions",
                    json={"flowId": "9b1f3c2e-6a4d-4e8b-9f21-3c7d5a0e8b14", "data": {}},
                )
        # Printed when the span ended: no flush, no shutdown needed.
        span = json.loads(capsys.readouterr().out)
    finally:
        provider.shutdown()
    assert span["resource"]["attributes"]["service.name"] == "order-service"
    assert span["attributes"]["flow.error.fields"] == ["data"]
    assert span["status"]["description"] == "400 bad.request: Invalid input [fields: data]"
    assert [e["name"] for e in span["events"]] == [
        "flow.error.body",
        "flow.request.body",
        "flow.hint",
    ]
