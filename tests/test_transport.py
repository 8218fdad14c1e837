"""The instrumented transport: one span per call, SPEC §4 attributes, the response unchanged."""

from __future__ import annotations

import gzip
import json
import time
from typing import Any

import httpx
import pytest

import flowscope
from flowscope import AsyncFlowScopeTransport, FlowScopeConfig, FlowScopeTransport

from .conftest import LogCapture, Spans
from .servers import Reply, ScriptedServer

LAUNCH = "/api/v2/flows/executions"
FLOW_ID = "6e1a4b2c-0c7d-4d59-9f6e-2b0a1d2f3c4d"

GENESYS_400 = {
    "message": "Invalid input",
    "code": "bad.request",
    "status": 400,
    "messageWithParams": "Invalid input",
    "messageParams": {},
    "contextId": "ctx-from-body",
    "details": [{"errorCode": "UNRECOGNIZED_FIELD", "fieldName": "data"}],
    "errors": [
        {
            "message": "Unrecognized field",
            "code": "invalid.value",
            "status": 400,
            "details": [{"fieldName": "execution_context"}],
            "errors": [],
        }
    ],
}


def _json(status: int, doc: Any, *extra: tuple[str, str]) -> Reply:
    return Reply(
        status,
        [("Content-Type", "application/json"), ("ININ-Correlation-Id", "corr-123"), *extra],
        json.dumps(doc).encode(),
    )


BIG = b'{"message": "' + b"x" * (1024 * 1024) + b'", "code": "bad.request"}'

CASES: dict[str, Reply] = {
    "json-400": _json(400, GENESYS_400),
    "gzip-400": Reply(
        400,
        [("Content-Type", "application/json"), ("Content-Encoding", "gzip")],
        gzip.compress(json.dumps(GENESYS_400).encode()),
    ),
    "big-400": Reply(400, [("Content-Type", "application/json")], BIG),
    "chunked-500": Reply(
        500,
        [("Content-Type", "application/json")],
        [b'{"message": "boom", ', b'"code": "internal.server.error", ', b'"status": 500}'],
        chunked=True,
    ),
    "empty-404": Reply(404, [("Content-Type", "application/json")], b""),
    "html-502": Reply(
        502,
        [("Content-Type", "text/html")],
        b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
    ),
    "bad-utf8-400": Reply(
        400, [("Content-Type", "application/json")], b'{"message": "\xff\xfe\x80"}'
    ),
    "ok-200": _json(200, {"id": "exec-1", "flowVersion": {"id": "3.0"}}),
}

PAYLOAD = {"flowId": FLOW_ID, "data": {"a": 1}}


def _exchange(resp: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    return resp.status_code, list(resp.headers.multi_items()), resp.content


@pytest.mark.parametrize("case", sorted(CASES))
def test_sync_caller_gets_exactly_the_uninstrumented_response(
    case: str, server: ScriptedServer, spans: Spans, metrics: flowscope.FlowMetrics
) -> None:
    server.replies[LAUNCH] = CASES[case]
    with httpx.Client(base_url=server.url) as bare:
        expected = _exchange(bare.post(LAUNCH, json=PAYLOAD))
    transport = FlowScopeTransport(tracer_provider=spans.provider, metrics=metrics)
    with httpx.Client(base_url=server.url, transport=transport) as client:
        started = time.perf_counter()
        got = client.post(LAUNCH, json=PAYLOAD)
        outer = time.perf_counter() - started
        assert _exchange(got) == expected
        # .elapsed works (a re-read response would raise) and measures this call, nothing else.
        assert 0 < got.elapsed.total_seconds() <= outer
    attributes = _attrs(spans.one())
    assert attributes["flow.operation"] == "launch"
    assert attributes["flow.id"] == FLOW_ID
    assert attributes["http.response.status_code"] == CASES[case].status


@pytest.mark.parametrize("case", sorted(CASES))
async def test_async_caller_gets_exactly_the_uninstrumented_response(
    case: str, server: ScriptedServer, spans: Spans, metrics: flowscope.FlowMetrics
) -> None:
    server.replies[LAUNCH] = CASES[case]
    async with httpx.AsyncClient(base_url=server.url) as bare:
        expected = _exchange(await bare.post(LAUNCH, json=PAYLOAD))
    transport = AsyncFlowScopeTransport(tracer_provider=spans.provider, metrics=metrics)
    async with httpx.AsyncClient(base_url=server.url, transport=transport) as client:
        started = time.perf_counter()
        got = await client.post(LAUNCH, json=PAYLOAD)
        outer = time.perf_counter() - started
        assert _exchange(got) == expected
        assert 0 < got.elapsed.total_seconds() <= outer
    assert spans.one().attributes["flow.id"] == FLOW_ID  # type: ignore[index]


@pytest.mark.parametrize("case", ["big-400", "chunked-500", "json-400", "ok-200"])
def test_streamed_reads_deliver_the_same_bytes(
    case: str, server: ScriptedServer, spans: Spans, metrics: flowscope.FlowMetrics
) -> None:
    server.replies[LAUNCH] = CASES[case]
    with httpx.Client(base_url=server.url) as bare, bare.stream("POST", LAUNCH, json=PAYLOAD) as r:
        expected_raw = b"".join(r.iter_raw())
    transport = FlowScopeTransport(tracer_provider=spans.provider, metrics=metrics)
    with httpx.Client(base_url=server.url, transport=transport) as client:
        with client.stream("POST", LAUNCH, json=PAYLOAD) as r:
            assert b"".join(r.iter_raw()) == expected_raw
        started = time.perf_counter()
        with client.stream("POST", LAUNCH, json=PAYLOAD) as r:
            assert b"".join(r.iter_bytes()) == expected_raw
        assert 0 < r.elapsed.total_seconds() <= time.perf_counter() - started


def _attrs(span: Any) -> dict[str, Any]:
    return dict(span.attributes or {})


def _event(span: Any, name: str) -> dict[str, Any]:
    found = [dict(e.attributes or {}) for e in span.events if e.name == name]
    assert found, f"no {name} event in {[e.name for e in span.events]}"
    return found[0]


def _check_genesys_400_span(span: Any) -> None:
    a = _attrs(span)
    assert a["url.template"] == LAUNCH
    assert a["flow.operation"] == "launch"
    assert a["flow.id"] == FLOW_ID
    assert a["flow.name"] == "Order Status"
    assert a["flow.version"] == "3.0"
    assert a["genesys.correlation_id"] == "corr-123"
    assert a["flow.error.code"] == "bad.request"
    assert a["flow.error.message"] == "Invalid input"
    assert list(a["flow.error.fields"]) == ["data", "execution_context"]
    assert "header:authorization" in a["flowscope.redacted"]
    assert a["http.request.method"] == "POST"
    assert a["url.full"].endswith(LAUNCH)
    assert a["server.address"] == "127.0.0.1"
    assert a["error.type"] == "400"
    assert span.status.status_code.name == "ERROR"
    assert "bad.request" in (span.status.description or "")
    body = _event(span, "flow.error.body")
    assert json.loads(body["body"])["details"][0]["fieldName"] == "data"
    assert body["body.truncated"] is False
    assert body["content_type"] == "application/json"
    sent = _event(span, "flow.request.body")
    assert json.loads(sent["body"])["data"] == {"a": 1}
    hints = {
        (e.attributes["hint.code"], e.attributes.get("hint.field"))
        for e in span.events
        if e.name == "flow.hint"
    }
    assert ("unknown-root-key", "data") in hints


CONFIG = FlowScopeConfig(flow_names={FLOW_ID: "Order Status"})
SENT = {"flowId": FLOW_ID, "flowVersion": "3.0", "data": {"a": 1}}
AUTH = {"Authorization": "Bearer abc.def-secret-token-value"}


def test_genesys_400_span_has_every_attribute_and_event_sync(
    server: ScriptedServer, spans: Spans, metrics: flowscope.FlowMetrics
) -> None:
    server.replies[LAUNCH] = _json(400, GENESYS_400)
    transport = FlowScopeTransport(tracer_provider=spans.provider, metrics=metrics, config=CONFIG)
    with httpx.Client(base_url=server.url, transport=transport) as client:
        client.post(LAUNCH, json=SENT, headers=AUTH)
    _check_genesys_400_span(spans.one())


async def test_genesys_400_span_has_every_attribute_and_event_async(
    server: ScriptedServer, spans: Spans, metrics: flowscope.FlowMetrics
) -> None:
    server.replies[LAUNCH] = _json(400, GENESYS_400)
    transport = AsyncFlowScopeTransport(
        tracer_provider=spans.provider, metrics=metrics, config=CONFIG
    )
    async with httpx.AsyncClient(base_url=server.url, transport=transport) as client:
        await client.post(LAUNCH, json=SENT, headers=AUTH)
    _check_genesys_400_span(spans.one())


def test_gzip_error_body_is_decoded_for_display(
    server: ScriptedServer, spans: Spans, metrics: flowscope.FlowMetrics
) -> None:
    server.replies[LAUNCH] = CASES["gzip-400"]
    transport = FlowScopeTransport(tracer_provider=spans.provider, metrics=metrics)
    with httpx.Client(base_url=server.url, transport=transport) as client:
        assert client.post(LAUNCH, json=PAYLOAD).json()["code"] == "bad.request"
    span = spans.one()
    assert json.loads(_event(span, "flow.error.body")["body"])["code"] == "bad.request"
    assert _attrs(span)["flow.error.code"] == "bad.request"


def test_huge_error_body_is_captured_up_to_the_limit_and_delivered_whole(
    server: ScriptedServer, spans: Spans, metrics: flowscope.FlowMetrics
) -> None:
    server.replies[LAUNCH] = CASES["big-400"]
    transport = FlowScopeTransport(tracer_provider=spans.provider, metrics=metrics)
    with httpx.Client(base_url=server.url, transport=transport) as client:
        assert client.post(LAUNCH, json=PAYLOAD).content == BIG
    body = _event(spans.one(), "flow.error.body")
    assert body["body.truncated"] is True
    assert body["body.size"] == len(BIG)
    assert body["body"] == BIG[:65536].decode()


def test_correlation_id_falls_back_to_context_id_in_body(
    server: ScriptedServer, spans: Spans, metrics: flowscope.FlowMetrics
) -> None:
    server.replies[LAUNCH] = Reply(
        400, [("Content-Type", "application/json")], json.dumps(GENESYS_400).encode()
    )
    transport = FlowScopeTransport(tracer_provider=spans.provider, metrics=metrics)
    with httpx.Client(base_url=server.url, transport=transport) as client:
        client.post(LAUNCH, json=PAYLOAD)
    assert _attrs(spans.one())["genesys.correlation_id"] == "ctx-from-body"


def test_launch_success_records_execution_id_without_holding_the_body(
    server: ScriptedServer, spans: Spans, metrics: flowscope.FlowMetrics
) -> None:
    server.replies[LAUNCH] = _json(
        200,
        {
            "id": "exec-42",
            "name": "run",
            "flowVersion": {"id": "3.0", "selfUri": f"/api/v2/flows/{FLOW_ID}/versions/3.0"},
        },
    )
    transport = FlowScopeTransport(tracer_provider=spans.provider, metrics=metrics)
    with httpx.Client(base_url=server.url, transport=transport) as client:
        assert client.post(LAUNCH, json={"flowId": FLOW_ID}).json()["id"] == "exec-42"
    span = spans.one()
    a = _attrs(span)
    assert a["flow.execution.id"] == "exec-42"
    assert a["flow.version"] == "3.0"
    assert a["genesys.correlation_id"] == "corr-123"
    assert span.status.status_code.name == "UNSET"
    assert not span.events


def test_get_execution_takes_flow_id_from_the_response(
    server: ScriptedServer, spans: Spans, metrics: flowscope.FlowMetrics
) -> None:
    path = f"{LAUNCH}/exec-42"
    server.replies[path] = _json(
        200,
        {
            "id": "exec-42",
            "status": "COMPLETED",
            "flowVersion": {"id": "3.0", "selfUri": f"/api/v2/flows/{FLOW_ID}/versions/3.0"},
        },
    )
    transport = FlowScopeTransport(tracer_provider=spans.provider, metrics=metrics)
    with httpx.Client(base_url=server.url, transport=transport) as client:
        client.get(path)
    a = _attrs(spans.one())
    assert a["flow.operation"] == "get_execution"
    assert a["url.template"] == "/api/v2/flows/executions/{flowExecutionId}"
    assert a["flow.id"] == FLOW_ID
    assert a["flow.execution.id"] == "exec-42"


def test_unmatched_path_gets_the_plain_span_and_nothing_else(
    server: ScriptedServer, spans: Spans, metrics: flowscope.FlowMetrics, registry: Any
) -> None:
    server.replies["/api/v2/users/me"] = _json(400, GENESYS_400)
    transport = FlowScopeTransport(tracer_provider=spans.provider, metrics=metrics)
    with httpx.Client(base_url=server.url, transport=transport) as client:
        client.get("/api/v2/users/me")
    span = spans.one()
    assert not [k for k in _attrs(span) if k.startswith(("flow.", "flowscope.", "genesys."))]
    assert not span.events
    # Every sample flowscope could write, by its exported name: none may carry a value.
    counted = {
        (s.name, tuple(sorted(s.labels.items())))
        for m in registry.collect()
        for s in m.samples
        if s.name.startswith("flowscope_") and not s.name.endswith("_created") and s.value
    }
    assert counted == set()
    # The same call on a flow route is counted: the check above looks where counts land.
    server.replies[LAUNCH] = _json(400, GENESYS_400)
    with httpx.Client(base_url=server.url, transport=transport) as client:
        client.post(LAUNCH, json=PAYLOAD)
    labels = {"flow": FLOW_ID, "operation": "launch", "method": "POST", "status_code": "400"}
    assert registry.get_sample_value("flowscope_requests_total", labels) == 1


def test_unmatched_path_still_has_its_access_token_redacted(
    server: ScriptedServer, spans: Spans, metrics: flowscope.FlowMetrics
) -> None:
    transport = FlowScopeTransport(tracer_provider=spans.provider, metrics=metrics)
    with httpx.Client(base_url=server.url, transport=transport) as client:
        client.get("/other", params={"access_token": "tok-secret-value-123"})
    url = _attrs(spans.one())["url.full"]
    assert "tok-secret-value-123" not in url
    assert "access_token=" in url


def test_transport_error_is_recorded_and_reraised_unchanged(
    spans: Spans, metrics: flowscope.FlowMetrics, registry: Any, flowscope_logs: LogCapture
) -> None:
    transport = FlowScopeTransport(
        httpx.HTTPTransport(retries=0), tracer_provider=spans.provider, metrics=metrics
    )
    # A port nobody listens on: bind, note it, close.
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with httpx.Client(transport=transport) as client, pytest.raises(httpx.ConnectError):
        client.post(f"http://127.0.0.1:{port}{LAUNCH}", json={"flowId": FLOW_ID})
    span = spans.one()
    assert span.status.status_code.name == "ERROR"
    assert any(e.name == "exception" for e in span.events)
    assert _attrs(span)["error.type"] == "ConnectError"
    assert _attrs(span)["flow.id"] == FLOW_ID
    assert (
        registry.get_sample_value(
            "flowscope_transport_errors_total",
            {"flow": FLOW_ID, "operation": "launch", "exception": "ConnectError"},
        )
        == 1
    )
    warnings = [r for r in flowscope_logs.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert warnings[0].flowscope["exception"]["type"] == "ConnectError"  # type: ignore[attr-defined]


def test_one_warning_log_record_per_failed_flow_call(
    server: ScriptedServer, spans: Spans, metrics: flowscope.FlowMetrics, flowscope_logs: LogCapture
) -> None:
    server.replies[LAUNCH] = _json(400, GENESYS_400)
    transport = FlowScopeTransport(tracer_provider=spans.provider, metrics=metrics)
    with httpx.Client(base_url=server.url, transport=transport) as client:
        client.post(LAUNCH, json=SENT, headers=AUTH)
        server.replies[LAUNCH] = _json(200, {"id": "x"})
        client.post(LAUNCH, json={"flowId": FLOW_ID}, headers=AUTH)
    warnings = [r for r in flowscope_logs.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    report = warnings[0].flowscope  # type: ignore[attr-defined]
    assert report["error"]["code"] == "bad.request"
    assert report["error"]["fields"] == ["data", "execution_context"]
    assert report["correlation_id"] == "corr-123"
    assert report["trace_id"] == f"{spans.all()[0].context.trace_id:032x}"
    assert "abc.def-secret-token-value" not in repr(report) + warnings[0].getMessage()


def test_instrument_keeps_mounts_and_event_hooks_working(
    server: ScriptedServer, spans: Spans, metrics: flowscope.FlowMetrics
) -> None:
    server.replies[LAUNCH] = _json(400, GENESYS_400)
    seen: list[str] = []
    mocked = httpx.MockTransport(lambda req: httpx.Response(200, json={"id": "mocked-exec"}))
    client = httpx.Client(
        base_url=server.url,
        mounts={"http://mocked.invalid": mocked},
        event_hooks={
            "request": [lambda r: seen.append(f"req {r.url.path}")],
            "response": [lambda r: seen.append(f"resp {r.status_code}")],
        },
    )
    assert flowscope.instrument(client, tracer_provider=spans.provider, metrics=metrics) is client
    flowscope.instrument(client, tracer_provider=spans.provider, metrics=metrics)  # idempotent
    with client:
        assert client.post(LAUNCH, json={"flowId": FLOW_ID}).status_code == 400
        r = client.post(f"http://mocked.invalid{LAUNCH}", json={"flowId": FLOW_ID})
        assert r.json() == {"id": "mocked-exec"}
    assert seen == [f"req {LAUNCH}", "resp 400", f"req {LAUNCH}", "resp 200"]
    got = sorted((s.attributes or {})["http.response.status_code"] for s in spans.all())
    assert got == [200, 400]  # one span per call, on the default transport and the mount
    assert _attrs(spans.all()[1])["flow.execution.id"] == "mocked-exec"

    flowscope.uninstrument(client)
    spans.clear()
    with httpx.Client(base_url=server.url) as c2:
        flowscope.instrument(c2, tracer_provider=spans.provider, metrics=metrics)
        flowscope.uninstrument(c2)
        c2.post(LAUNCH, json={"flowId": FLOW_ID})
    assert spans.all() == []


async def test_instrument_async_client(
    server: ScriptedServer, spans: Spans, metrics: flowscope.FlowMetrics
) -> None:
    server.replies[LAUNCH] = _json(400, GENESYS_400)
    async with httpx.AsyncClient(base_url=server.url) as client:
        flowscope.instrument(client, tracer_provider=spans.provider, metrics=metrics)
        assert isinstance(client._transport, AsyncFlowScopeTransport)
        r = await client.post(LAUNCH, json={"flowId": FLOW_ID})
        assert r.json()["code"] == "bad.request"
    assert _attrs(spans.one())["flow.error.code"] == "bad.request"


def test_secrets_never_reach_spans_or_logs(
    server: ScriptedServer, spans: Spans, metrics: flowscope.FlowMetrics, flowscope_logs: LogCapture
) -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzZWNyZXQtdXNlciJ9.c2lnbmF0dXJlLXRoYXQtaXMtc2VjcmV0"
    secrets = [
        "bearer-token-AAAA1111",
        "client-secret-BBBB2222",
        "query-token-CCCC3333",
        jwt,
        "cookie-value-DDDD4444",
    ]
    server.replies["/oauth/token"] = Reply(
        401,
        [("Content-Type", "application/json"), ("Set-Cookie", f"session={secrets[4]}")],
        json.dumps(
            {"error": "invalid_client", "error_description": f"token {jwt} was rejected"}
        ).encode(),
    )
    server.replies[LAUNCH] = Reply(
        400,
        [("Content-Type", "application/json"), ("Set-Cookie", f"sid={secrets[4]}; HttpOnly")],
        json.dumps({"code": "bad.request", "message": f"bad token {jwt}"}).encode(),
    )
    transport = FlowScopeTransport(tracer_provider=spans.provider, metrics=metrics)
    with httpx.Client(base_url=server.url, transport=transport) as client:
        client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", "client_secret": secrets[1]},
            auth=("client-id", secrets[1]),
        )
        client.post(
            LAUNCH,
            params={"access_token": secrets[2]},
            json={"flowId": FLOW_ID, "inputData": {"Flow.x": 1}},
            headers={"Authorization": f"Bearer {secrets[0]}"},
        )
    exported = repr(
        [(s.attributes, [(e.name, e.attributes) for e in s.events], s.status) for s in spans.all()]
    )
    logged = repr([(r.getMessage(), getattr(r, "flowscope", None)) for r in flowscope_logs.records])
    for secret in secrets:
        for piece in (secret, secret[:12], secret[-12:]):
            assert piece not in exported
            assert piece not in logged
    assert len(spans.all()) == 2
    token_span = next(s for s in spans.all() if _attrs(s)["flow.operation"] == "token")
    assert _attrs(token_span)["flow.error.code"] == "invalid_client"
    assert _attrs(token_span)["flow.id"] == "__none__"


def test_flow_id_in_the_path_is_diagnosed_as_a_launch(
    server: ScriptedServer, spans: Spans, metrics: flowscope.FlowMetrics
) -> None:
    path = f"/api/v2/flows/{FLOW_ID}/executions"
    server.replies[path] = _json(404, {"code": "not.found", "message": "Not found", "status": 404})
    transport = FlowScopeTransport(tracer_provider=spans.provider, metrics=metrics)
    with httpx.Client(base_url=server.url, transport=transport) as client:
        assert client.post(path, json={"inputData": {"Flow.x": "1"}}).status_code == 404
    span = spans.one()
    a = _attrs(span)
    assert a["flow.operation"] == "launch"
    assert a["url.template"] == "/api/v2/flows/{flowId}/executions"
    assert a["flow.id"] == FLOW_ID
    hints = {e.attributes["hint.code"] for e in span.events if e.name == "flow.hint"}
    assert "flow-id-in-path" in hints


def test_global_httpx_instrumentor_does_not_give_a_second_span(
    server: ScriptedServer, spans: Spans, metrics: flowscope.FlowMetrics
) -> None:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    server.replies[LAUNCH] = _json(400, GENESYS_400)
    instrumentor = HTTPXClientInstrumentor()
    instrumentor.instrument(tracer_provider=spans.provider)
    try:
        transport = FlowScopeTransport(tracer_provider=spans.provider, metrics=metrics)
        with httpx.Client(base_url=server.url, transport=transport) as client:
            assert client.post(LAUNCH, json=SENT).status_code == 400
    finally:
        instrumentor.uninstrument()
    assert _attrs(spans.one())["flow.error.code"] == "bad.request"


def test_server_text_cannot_forge_a_log_line(
    server: ScriptedServer, spans: Spans, metrics: flowscope.FlowMetrics, flowscope_logs: LogCapture
) -> None:
    forged = "Invalid input\nWARNING flow call succeeded: all good"
    server.replies[LAUNCH] = _json(400, {"code": "bad.request", "message": forged})
    transport = FlowScopeTransport(tracer_provider=spans.provider, metrics=metrics)
    with httpx.Client(base_url=server.url, transport=transport) as client:
        client.post(LAUNCH, json={"flowId": FLOW_ID})
    (warning,) = [r for r in flowscope_logs.records if r.levelname == "WARNING"]
    assert "\n" not in warning.getMessage()
    assert "all good" in warning.getMessage()
    assert warning.flowscope["error"]["message"] == forged  # type: ignore[attr-defined]
    assert "\n" not in (spans.one().status.description or "")
