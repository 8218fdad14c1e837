"""The official Genesys Cloud Python SDK, through FlowScopeHttpClient and through its own client."""

from __future__ import annotations

import base64
import importlib
import json
import logging
import socket
import subprocess
import sys
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import urllib3.util.retry
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from PureCloudPlatformClientV2 import ApiClient, ArchitectApi, FlowExecutionLaunchRequest
from PureCloudPlatformClientV2.abstract_http_client import AbstractHttpClient
from PureCloudPlatformClientV2.default_http_client import DefaultHttpClient
from PureCloudPlatformClientV2.rest import ApiException

from flowscope import FlowMetrics
from flowscope.genesys import FlowScopeHttpClient, FlowScopeResponse
from flowscope.sandbox import Sandbox

from .conftest import Spans
from .servers import Reply, ScriptedServer

ROOT = Path(__file__).resolve().parents[1]
CLIENT_ID, SECRET, WRONG_SECRET = "sandbox-client", "sandbox-secret", "not-the-secret-42"
# Headers that differ on every response whoever sends the request.
PER_RESPONSE = {"date", "inin-correlation-id", "inin-ratelimit-reset", "retry-after"}


def _without_context(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_context(v) for k, v in value.items() if k != "contextId"}
    if isinstance(value, list):
        return [_without_context(v) for v in value]
    return value


def _outcome(call: Callable[[], Any]) -> tuple[Any, ...]:
    """What the SDK user sees, minus what differs per call (dates, correlation ids)."""
    try:
        result = call()
    except ApiException as exc:
        headers = [(k, v) for k, v in exc.headers.items() if k.lower() not in PER_RESPONSE]
        body = _without_context(json.loads(exc.body))
        return ("raised", exc.status, exc.reason, body, headers, type(exc.headers).__name__)
    if isinstance(result, ApiClient):
        return ("token", result.access_token.count("."))
    data = {k: v for k, v in result.to_dict().items() if not k.startswith("date_")}
    return ("returned", type(result).__name__, data)


def _launch(flow_id: str, inputs: dict[str, Any]) -> FlowExecutionLaunchRequest:
    request = FlowExecutionLaunchRequest()
    request.flow_id = flow_id
    request.name = "differential"
    request.input_data = inputs
    return request


def _sequence(sandbox: Sandbox, http_client: AbstractHttpClient | None) -> list[tuple[Any, ...]]:
    """A call before any token, token (refused, then granted), launch, 400 launch, 404, launch
    refused 429 then resent, get execution: the sandbox allows 3 API calls a minute."""
    api = ApiClient(host=sandbox.url)
    if http_client is not None:
        api.set_http_client(http_client)
    architect = ArchitectApi(api)
    flow = sandbox.flows[0].id
    outcomes = [
        _outcome(lambda: architect.get_flows_execution("before-any-token")),
        _outcome(lambda: api.get_client_credentials_token(CLIENT_ID, WRONG_SECRET)),
        _outcome(lambda: api.get_client_credentials_token(CLIENT_ID, SECRET)),
    ]
    first = architect.post_flows_executions(_launch(flow, {"Flow.customerId": "C-1"}))
    outcomes += [
        _outcome(lambda: first),
        _outcome(lambda: architect.post_flows_executions(_launch(flow, {"customerId": "C-1"}))),
        _outcome(lambda: architect.get_flows_execution("no-such-execution")),
        _outcome(lambda: architect.post_flows_executions(_launch(flow, {"Flow.isVip": True}))),
        _outcome(lambda: architect.get_flows_execution(first.id)),
    ]
    return outcomes


def _sandbox() -> Sandbox:
    # Same seed: both runs draw the same execution ids; executions stay RUNNING for both.
    return Sandbox(seed=7, rate_limit_per_minute=3, execution_seconds=3600)


def _passing_time(sandbox: Sandbox, slept: list[float]) -> Callable[[float], None]:
    """A sleep that lets the rate-limit window pass at once."""

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        sandbox.reset_rate_limit()

    return sleep


@pytest.fixture
def caught_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="flowscope")
    return caplog


def test_sdk_calls_return_and_raise_the_same_through_flowscope_as_through_the_default_client(
    monkeypatch: pytest.MonkeyPatch, spans: Spans, metrics: FlowMetrics
) -> None:
    default_slept: list[float] = []
    with _sandbox() as sandbox:
        # The default client waits out Retry-After inside urllib3.
        clock = types.SimpleNamespace(time=time.time, sleep=_passing_time(sandbox, default_slept))
        monkeypatch.setattr(urllib3.util.retry, "time", clock)
        expected = _sequence(sandbox, DefaultHttpClient())
        monkeypatch.undo()

    ours_slept: list[float] = []
    with _sandbox() as sandbox:
        client = FlowScopeHttpClient(
            tracer_provider=spans.provider,
            metrics=metrics,
            sleep=_passing_time(sandbox, ours_slept),
        )
        with client:
            got = _sequence(sandbox, client)

    assert got == expected
    kinds = [o[0] for o in got]
    assert kinds == [
        *("raised", "raised", "token"),
        *("returned", "raised", "raised", "returned", "returned"),
    ]
    assert [o[1] for o in got if o[0] == "raised"] == [401, 401, 400, 404]
    # Both waited once, for the sandbox's Retry-After (the rest of its one-minute window).
    assert len(default_slept) == len(ours_slept) == 1
    assert 0 < ours_slept[0] <= 60 and 0 < default_slept[0] <= 60


def test_sdk_calls_make_flowscope_spans_and_metrics(
    spans: Spans, metrics: FlowMetrics, registry: CollectorRegistry
) -> None:
    with _sandbox() as sandbox:
        flow = sandbox.flows[0].id
        api = ApiClient(host=sandbox.url)
        with FlowScopeHttpClient(
            tracer_provider=spans.provider, metrics=metrics, sleep=_passing_time(sandbox, [])
        ) as client:
            api.set_http_client(client)
            api.get_client_credentials_token(CLIENT_ID, SECRET)
            architect = ArchitectApi(api)
            launched = architect.post_flows_executions(_launch(flow, {"Flow.customerId": "C"}))
            with pytest.raises(ApiException) as bad:
                architect.post_flows_executions(_launch(flow, {"customerId": "C"}))
            with pytest.raises(ApiException):
                architect.get_flows_execution("no-such-execution")
            architect.post_flows_executions(_launch(flow, {"Flow.isVip": True}))

    token, ok, refused, missing, limited, resent = (dict(s.attributes or {}) for s in spans.all())
    assert token["flow.operation"] == "token" and token["flow.id"] == "__none__"
    assert ok["flow.id"] == flow and ok["flow.execution.id"] == launched.id
    assert refused["flow.error.code"] == "invalid.value"
    assert refused["flow.error.fields"] == ("inputData.customerId",)
    assert refused["genesys.correlation_id"] == bad.value.headers["ININ-Correlation-Id"]
    hints = [e.attributes["hint.code"] for e in spans.all()[2].events if e.name == "flow.hint"]
    assert hints == ["input-key-prefix"]
    assert missing["flow.error.code"] == "not.found"
    assert missing["http.response.status_code"] == 404
    assert limited["flow.error.code"] == "too.many.requests"
    assert "http.request.resend_count" not in limited
    assert resent["http.request.resend_count"] == 1
    assert resent["http.response.status_code"] == 200

    def count(status: str) -> float | None:
        labels = {"flow": flow, "operation": "launch", "method": "POST", "status_code": status}
        return registry.get_sample_value("flowscope_requests_total", labels)

    # Every attempt counts: the refused one and its resend.
    assert (count("200"), count("400"), count("429")) == (2.0, 1.0, 1.0)
    errors = {"flow": flow, "operation": "launch", "status_code": "400"}
    assert (
        registry.get_sample_value(
            "flowscope_errors_total", {**errors, "error_code": "invalid.value"}
        )
        == 1.0
    )
    fields = {"flow": flow, "operation": "launch", "field": "inputData.customerId"}
    assert registry.get_sample_value("flowscope_error_fields_total", fields) == 1.0


def test_sdk_credentials_and_token_appear_in_no_span_log_or_metric(
    spans: Spans, metrics: FlowMetrics, registry: CollectorRegistry, caught_logs: Any
) -> None:
    with _sandbox() as sandbox:
        api = ApiClient(host=sandbox.url)
        with FlowScopeHttpClient(
            tracer_provider=spans.provider, metrics=metrics, sleep=_passing_time(sandbox, [])
        ) as client:
            _sequence(sandbox, client)
            # The client keeps the token from the last call of the sequence's ApiClient; take one
            # of our own to look for as well.
            api.set_http_client(client)
            api.get_client_credentials_token(CLIENT_ID, SECRET)
            with pytest.raises(ApiException):
                ArchitectApi(api).get_flows_execution("no-such-execution")

    secrets = [SECRET, WRONG_SECRET, api.access_token, api.access_token.split(".")[-1]]
    for secret in (SECRET, WRONG_SECRET):
        secrets.append(base64.b64encode(f"{CLIENT_ID}:{secret}".encode()).decode())
    exported = [s.to_json() for s in spans.all()]
    logged = [f"{r.getMessage()} {r.__dict__!r}" for r in caught_logs.records]
    exposed = [generate_latest(registry).decode(), generate_openmetrics(registry).decode()]
    # The places looked at did get the calls, failures included.
    assert len(exported) == 11
    assert sum("invalid_client" in text for text in exported) == 1  # the refused token call
    # One WARNING per failed call: 401 twice, then 400, 404, 429 and 404.
    warned = [
        r for r in caught_logs.records if r.name == "flowscope" and r.levelno == logging.WARNING
    ]
    assert len(warned) == 6
    assert "invalid.value" in exposed[0]
    for secret in secrets:
        for text in (*exported, *logged, *exposed):
            assert secret not in text


def test_the_request_on_the_wire_is_the_one_the_default_client_sends(
    server: ScriptedServer, metrics: FlowMetrics
) -> None:
    json_reply = [("Content-Type", "application/json")]
    server.replies["/login/oauth/token"] = Reply(200, json_reply, b'{"access_token": "a.b.c"}')
    server.replies["/api/v2/flows"] = Reply(200, json_reply, b'{"entities": []}')
    server.replies["/api/v2/flows/executions"] = Reply(200, json_reply, b'{"id": "e1"}')

    def drive(http_client: AbstractHttpClient) -> None:
        # A path under the host keeps the token call apart from the API calls on one server.
        api = ApiClient(host=f"{server.url}/login")
        api.set_http_client(http_client)
        api.get_client_credentials_token(CLIENT_ID, SECRET)
        api.host = server.url
        architect = ArchitectApi(api)
        architect.get_flows(type=["workflow", "bot"], page_size=5, name_or_description="a b&c")
        launch = _launch("f-1", {"Flow.note": "ünïcode ✓", "Flow.n": 3})
        architect.post_flows_executions(launch)

    drive(DefaultHttpClient())
    sent_by_default = server.seen[:]
    server.seen.clear()
    with FlowScopeHttpClient(metrics=metrics) as client:
        drive(client)

    def wire(seen: list[tuple[str, str, dict[str, str], bytes]]) -> list[Any]:
        # The headers the SDK sets; the two transports add their own User-Agent/Accept only
        # where the SDK sets none (the token call).
        kept = {"content-type", "authorization", "purecloud-sdk"}
        return [
            (method, path, body, {k.lower(): v for k, v in h.items() if k.lower() in kept})
            for method, path, h, body in seen
        ]

    def sdk_agent(seen: list[tuple[str, str, dict[str, str], bytes]]) -> list[Any]:
        return [(h.get("User-Agent"), h.get("Accept")) for _, _, h, _ in seen[1:]]

    assert wire(server.seen) == wire(sent_by_default)
    assert sdk_agent(server.seen) == sdk_agent(sent_by_default)
    assert sdk_agent(server.seen)[0] == ("PureCloud SDK/python", "application/json")
    token, listing, launched = wire(server.seen)
    assert token[2] == b"grant_type=client_credentials"
    assert token[3]["content-type"] == "application/x-www-form-urlencoded"
    assert "pageSize=5" in listing[1] and "a+b%26c" in listing[1]
    assert json.loads(launched[2])["inputData"]["Flow.note"] == "ünïcode ✓"


def test_pre_and_post_request_hooks_run_around_the_call(
    server: ScriptedServer, metrics: FlowMetrics
) -> None:
    server.replies["/api/v2/flows/executions/e1"] = Reply(
        200, [("Content-Type", "application/json")], b'{"id": "e1", "status": "RUNNING"}'
    )
    seen: list[Any] = []

    def pre(options: Any) -> Any:
        options.headers["X-Caller"] = "billing-batch"
        return options

    def post(response: Any) -> Any:
        seen.append(response)
        return response

    client = FlowScopeHttpClient(metrics=metrics)
    client.set_pre_request_hook(pre)
    client.set_post_request_hook(post)
    api = ApiClient(host=server.url)
    api.set_http_client(client)
    with client:
        execution = ArchitectApi(api).get_flows_execution("e1")

    assert execution.status == "RUNNING"
    assert server.seen[0][2]["X-Caller"] == "billing-batch"
    assert isinstance(seen[0], FlowScopeResponse)
    assert seen[0].status == 200 and seen[0].getheader("content-type") == "application/json"


def test_the_sdk_timeout_bounds_each_attempt(server: ScriptedServer, metrics: FlowMetrics) -> None:
    server.replies["/api/v2/flows/executions/slow"] = Reply(200, [], b"{}", delay=2.0)
    api = ApiClient(host=server.url)
    with FlowScopeHttpClient(metrics=metrics, timeout=200) as client:
        api.set_http_client(client)
        with pytest.raises(httpx.ReadTimeout):
            ArchitectApi(api).get_flows_execution("slow")
    assert len(server.seen) == 1


def test_retries_are_bounded_and_retry_after_is_capped(
    server: ScriptedServer, spans: Spans, metrics: FlowMetrics, registry: CollectorRegistry
) -> None:
    server.replies["/api/v2/flows/executions"] = Reply(
        429,
        [("Content-Type", "application/json"), ("Retry-After", "3600")],
        b'{"code": "too.many.requests", "status": 429, "message": "slow down"}',
    )
    slept: list[float] = []
    user_client = httpx.Client()
    client = FlowScopeHttpClient(
        user_client,
        tracer_provider=spans.provider,
        metrics=metrics,
        max_retries=2,
        max_retry_after=5,
        sleep=slept.append,
    )
    api = ApiClient(host=server.url)
    api.set_http_client(client)
    with pytest.raises(ApiException) as refused, user_client:
        ArchitectApi(api).post_flows_executions(_launch("f-1", {}))

    assert refused.value.status == 429
    assert json.loads(refused.value.body)["code"] == "too.many.requests"
    assert slept == [5, 5]
    assert len(server.seen) == 3
    counts = [(s.attributes or {}).get("http.request.resend_count") for s in spans.all()]
    assert counts == [None, 1, 2]
    labels = {"flow": "f-1", "operation": "launch", "method": "POST", "status_code": "429"}
    assert registry.get_sample_value("flowscope_requests_total", labels) == 3.0


def test_a_502_is_resent_for_a_get_but_not_for_a_launch(
    server: ScriptedServer, metrics: FlowMetrics
) -> None:
    gateway = Reply(502, [("Content-Type", "text/plain")], b"bad gateway")
    server.replies["/api/v2/flows/executions"] = gateway
    server.replies["/api/v2/flows/executions/e1"] = gateway
    slept: list[float] = []
    api = ApiClient(host=server.url)
    with FlowScopeHttpClient(metrics=metrics, sleep=slept.append) as client:
        api.set_http_client(client)
        architect = ArchitectApi(api)
        with pytest.raises(ApiException) as launch:
            architect.post_flows_executions(_launch("f-1", {}))
        launches = len(server.seen)
        with pytest.raises(ApiException) as get:
            architect.get_flows_execution("e1")

    assert (launch.value.status, launch.value.body) == (502, "bad gateway")
    assert get.value.status == 502
    # The launch may have happened behind the gateway: sending it again could launch twice.
    assert launches == 1
    assert len(server.seen) - launches == 4
    assert slept == [0.5, 1.0, 2.0]


def test_a_retry_after_date_is_honoured(server: ScriptedServer, metrics: FlowMetrics) -> None:
    server.replies["/api/v2/flows/executions/e1"] = Reply(
        503, [("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT")], b""
    )
    slept: list[float] = []
    api = ApiClient(host=server.url)
    with FlowScopeHttpClient(metrics=metrics, max_retries=1, sleep=slept.append) as client:
        api.set_http_client(client)
        with pytest.raises(ApiException):
            ArchitectApi(api).get_flows_execution("e1")
    assert slept == [0.0]  # a date in the past: go now


@pytest.fixture
def closed_port() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    yield port


def test_a_refused_connection_is_retried_then_raised(
    closed_port: int, spans: Spans, metrics: FlowMetrics
) -> None:
    slept: list[float] = []
    api = ApiClient(host=f"http://127.0.0.1:{closed_port}")
    with FlowScopeHttpClient(
        tracer_provider=spans.provider, metrics=metrics, max_retries=2, sleep=slept.append
    ) as client:
        api.set_http_client(client)
        with pytest.raises(httpx.ConnectError):
            ArchitectApi(api).get_flows_execution("e1")
    assert slept == [0.5, 1.0]
    assert len(spans.all()) == 3


def test_a_missing_sdk_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(sys.modules):
        if name.split(".")[0] == "PureCloudPlatformClientV2":
            monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "flowscope.genesys")
    with pytest.raises(ImportError, match=r"flowscope\[genesys\]"):
        importlib.import_module("flowscope.genesys")


def test_the_sdk_example_launches_a_flow_against_the_sandbox() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "genesys_sdk.py")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "launched execution " in result.stdout
    assert "span launch status=400" in result.stdout
    assert "hints=input-key-prefix" in result.stdout
    assert "failed as expected: 400 Bad Request" in result.stdout


class _Clock:
    """Time that passes only when the client sleeps, so minutes of waiting take none."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


RATE_LIMITED = Reply(
    429,
    [("Content-Type", "application/json"), ("Retry-After", "60")],
    b'{"code": "too.many.requests", "status": 429, "message": "Rate limit exceeded"}',
)


def test_total_retry_time_is_capped_at_120_seconds_by_default(
    server: ScriptedServer, metrics: FlowMetrics
) -> None:
    server.replies["/api/v2/flows/executions"] = RATE_LIMITED
    clock = _Clock()
    api = ApiClient(host=server.url)
    with FlowScopeHttpClient(
        metrics=metrics, max_retries=10, sleep=clock.sleep, clock=clock
    ) as client:
        api.set_http_client(client)
        with pytest.raises(ApiException) as refused:
            ArchitectApi(api).post_flows_executions(_launch("f-1", {}))
    assert refused.value.status == 429
    # 60 + 60 fits in 120 s; a third 60 s wait would not, so the 429 is raised at once.
    assert clock.slept == [60, 60]
    assert len(server.seen) == 3


def test_a_small_retry_budget_gives_up_before_a_wait_that_would_exceed_it(
    server: ScriptedServer, metrics: FlowMetrics
) -> None:
    server.replies["/api/v2/flows/executions/e1"] = Reply(503, [], b"")
    clock = _Clock()
    api = ApiClient(host=server.url)
    with FlowScopeHttpClient(
        metrics=metrics,
        max_retries=10,
        backoff=0.1,
        max_retry_total=0.5,
        sleep=clock.sleep,
        clock=clock,
    ) as client:
        api.set_http_client(client)
        with pytest.raises(ApiException) as unavailable:
            ArchitectApi(api).get_flows_execution("e1")
    assert unavailable.value.status == 503
    assert clock.slept == [0.1, 0.2]  # 0.3 s spent; the next 0.4 s wait would end at 0.7 s
    assert len(server.seen) == 3


def test_a_refused_connection_stops_retrying_at_the_budget(
    closed_port: int, metrics: FlowMetrics
) -> None:
    clock = _Clock()
    api = ApiClient(host=f"http://127.0.0.1:{closed_port}")
    with FlowScopeHttpClient(
        metrics=metrics,
        max_retries=10,
        backoff=1,
        max_retry_total=3,
        sleep=clock.sleep,
        clock=clock,
    ) as client:
        api.set_http_client(client)
        with pytest.raises(httpx.ConnectError):
            ArchitectApi(api).get_flows_execution("e1")
    assert clock.slept == [1, 2]


def test_a_negative_retry_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="max_retry_total"):
        FlowScopeHttpClient(max_retry_total=-1)


def test_set_timeout_on_the_flowscope_client_bounds_each_attempt(
    server: ScriptedServer, metrics: FlowMetrics
) -> None:
    """What the README says: the timeout is set on FlowScopeHttpClient, in milliseconds."""
    server.replies["/api/v2/flows/executions/slow"] = Reply(200, [], b"{}", delay=2.0)
    api = ApiClient(host=server.url)
    assert not hasattr(api, "set_timeout")  # the SDK's ApiClient has none to set
    with FlowScopeHttpClient(metrics=metrics) as client:
        client.set_timeout(200)
        api.set_http_client(client)
        with pytest.raises(httpx.ReadTimeout):
            ArchitectApi(api).get_flows_execution("slow")
    assert len(server.seen) == 1


def test_an_instrumented_client_keeps_its_settings_in_the_sdk_client(
    metrics: FlowMetrics,
) -> None:
    from flowscope import FlowScopeConfig, instrument

    config = FlowScopeConfig(hints=False)
    with instrument(httpx.Client(), config=config, metrics=metrics) as user_client:
        sdk_client = FlowScopeHttpClient(user_client)
        assert sdk_client.client is user_client
        with pytest.raises(ValueError, match="already instrumented with different settings"):
            FlowScopeHttpClient(user_client, config=FlowScopeConfig(hints=True), metrics=metrics)
