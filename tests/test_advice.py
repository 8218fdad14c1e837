"""Every failed call says what to do next: one hint per failure class, from what the call showed.

End to end against the sandbox (span, log line, ``flowscope launch``), then :func:`advise` on
its own with a near miss per code that must not trigger it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan

import flowscope
from flowscope import CallRecord, FlowMetrics, _advice
from flowscope._advice import (
    ADVICE_CODES,
    AdviceMemory,
    FailedCall,
    advise,
)
from flowscope._record import RateLimit
from flowscope.oauth import read_token, token_request
from flowscope.sandbox import VIEWER_CLIENT, Sandbox, default_flows

from .conftest import LogCapture, Spans

LAUNCH = "/api/v2/flows/executions"
ORDER_STATUS = "9b1f3c2e-6a4d-4e8b-9f21-3c7d5a0e8b14"
DELETED = "7a0c2e94-1f3b-4d6a-8e57-b9c1d4f2a083"
INBOUND = "3e9c5b70-2d8a-4f1e-b6c4-8a0d7f3e5c21"
UNKNOWN = "0bad0f10-0000-4000-8000-00000000f404"
CLI = (sys.executable, "-m", "flowscope.cli")
GOOD = {"flowId": ORDER_STATUS, "inputData": {"Flow.customerId": "C-1"}}


@pytest.fixture(autouse=True)
def fresh_memory(monkeypatch: pytest.MonkeyPatch) -> AdviceMemory:
    """Each test starts with a memory of its own: call counts and hosts from other tests (a
    port reused by an earlier sandbox) must not leak into its hints."""
    memory = AdviceMemory()
    monkeypatch.setattr(_advice, "_SHARED", memory)
    return memory


# -- one call per class, against the sandbox ------------------------------------------------------


@dataclass
class Seen:
    record: CallRecord
    span: ReadableSpan
    warning: str


class Caller:
    """An instrumented client on a sandbox, keeping each call's record, span and WARNING."""

    def __init__(self, sandbox: Sandbox, spans: Spans, metrics: FlowMetrics, logs: LogCapture):
        self.sandbox = sandbox
        self.spans = spans
        self.logs = logs
        self.records: list[CallRecord] = []
        self.client = flowscope.instrument(
            httpx.Client(base_url=sandbox.url),
            tracer_provider=spans.provider,
            metrics=metrics,
            on_record=self.records.append,
        )

    def token(self, client_id: str | None = None, secret: str | None = None) -> httpx.Response:
        request = token_request(
            self.sandbox.url,
            client_id or self.sandbox.client_id,
            secret or self.sandbox.client_secret,
        )
        return self.client.send(request)

    def bearer(self, client_id: str | None = None, secret: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {read_token(self.token(client_id, secret)).access_token}"}

    def last(self) -> Seen:
        record = self.records[-1]
        (span,) = [s for s in self.spans.all() if f"{s.context.span_id:016x}" == record.span_id]
        warnings = [r.getMessage() for r in self.logs.records if r.levelname == "WARNING"]
        return Seen(record, span, warnings[-1] if warnings else "")


def hint_events(span: ReadableSpan) -> list[tuple[str, str]]:
    return [
        (str(e.attributes["hint.code"]), str(e.attributes["hint.message"]))
        for e in span.events
        if e.name == "flow.hint" and e.attributes is not None
    ]


def _token_expired(c: Caller) -> None:
    c.client.post(LAUNCH, json=GOOD, headers=c.bearer())


def _client_invalid(c: Caller) -> None:
    c.token(c.sandbox.client_id, "not-the-secret")


def _permission(c: Caller) -> None:
    c.client.post(LAUNCH, json=GOOD, headers=c.bearer(VIEWER_CLIENT.id, VIEWER_CLIENT.secret))


def _not_found(c: Caller) -> None:
    c.client.post(LAUNCH, json={**GOOD, "flowId": UNKNOWN}, headers=c.bearer())


def _deleted(c: Caller) -> None:
    c.client.post(LAUNCH, json={"flowId": DELETED}, headers=c.bearer())


def _not_launchable(c: Caller) -> None:
    auth = c.bearer()
    assert c.client.get(f"/api/v2/flows/{INBOUND}", headers=auth).status_code == 200
    c.client.post(LAUNCH, json={"flowId": INBOUND}, headers=auth)


def _rate_limited(c: Caller) -> None:
    auth = c.bearer()
    assert c.client.post(LAUNCH, json=GOOD, headers=auth).status_code == 200
    c.client.post(LAUNCH, json=GOOD, headers=auth)


def _server_error(c: Caller) -> None:
    c.client.post(LAUNCH, json=GOOD, headers=c.bearer())


@dataclass(frozen=True)
class Case:
    sandbox: dict[str, object]
    call: Callable[[Caller], None]
    status: int
    #: Phrases the message must hold: the facts the call showed, and last the next step.
    says: tuple[str, ...]


CASES: dict[str, Case] = {
    "auth-token-invalid": Case(
        {"token_ttl": 0},
        _token_expired,
        401,
        (
            "(credentials.expired)",
            "flowscope saw this token issued less than 1 s before this call with expires_in 0 s",
            "it had passed its expires_in",
            "86,400 s by default",
            "get a new one with POST /oauth/token",
        ),
    ),
    "auth-client-invalid": Case(
        {},
        _client_invalid,
        401,
        ("refused the client credentials (invalid_client)", "check the OAuth client's id and"),
    ),
    "permission-missing": Case(
        {},
        _permission,
        403,
        ("the error names architect:flow:launch", "add it to a role granted to the OAuth client"),
    ),
    "flow-not-found": Case(
        {},
        _not_found,
        404,
        (f"no flow {UNKNOWN} is found in the org on 127.0.0.1:", "check the id"),
    ),
    "flow-deleted": Case(
        {},
        _deleted,
        410,
        (f"flow Legacy IVR Survey ({DELETED}) was deleted", "restore it in Architect"),
    ),
    "flow-type-not-launchable": Case(
        {},
        _not_launchable,
        400,
        (
            f"flow {INBOUND} is of type INBOUNDCALL (GET /api/v2/flows/{INBOUND} said so)",
            "Put the logic in a workflow and launch that one",
        ),
    ),
    "rate-limited": Case(
        {"rate_limit_per_minute": 1},
        _rate_limited,
        429,
        (
            "the limit (org.app.user.rate.per.minute) is 1 request per 60 s",
            "inin-ratelimit-count says 2 of 1 used",
            "Retry-After asks for 60 s",
            "this process sent 3 flow calls to 127.0.0.1:",
            "keep under 1 per 60 s",
            "wait 60 s before the next call, then keep under",
        ),
    ),
    "server-error": Case(
        {"unavailable_rate": 1.0, "seed": 1},
        _server_error,
        503,
        (
            "the platform failed (503 service.unavailable)",
            "retry with exponential backoff",
            "a retried launch can start it twice",
        ),
    ),
}


def test_every_advice_code_has_a_case_and_a_row_in_the_readme() -> None:
    assert set(CASES) == set(ADVICE_CODES)
    with open(os.path.join(os.path.dirname(__file__), "..", "README.md"), encoding="utf-8") as f:
        readme = f.read()
    for code in ADVICE_CODES:
        assert f"| `{code}` |" in readme, code


@pytest.mark.parametrize("code", list(CASES))
def test_one_failed_call_of_each_class_gets_exactly_its_hint_on_the_span_and_in_the_log(
    code: str, spans: Spans, metrics: FlowMetrics, flowscope_logs: LogCapture
) -> None:
    case = CASES[code]
    with Sandbox(**case.sandbox) as sandbox:  # type: ignore[arg-type]
        caller = Caller(sandbox, spans, metrics, flowscope_logs)
        case.call(caller)
        seen = caller.last()
        caller.client.close()
    assert seen.record.status_code == case.status
    events = hint_events(seen.span)
    assert [event_code for event_code, _ in events] == [code]
    message = events[0][1]
    for phrase in case.says:
        assert phrase in message, (phrase, message)
    assert [h.code for h in seen.record.hints] == [code]
    assert seen.warning.endswith(f"\n    hint {code}: {message}")


def test_no_hint_on_successful_calls(
    spans: Spans, metrics: FlowMetrics, flowscope_logs: LogCapture
) -> None:
    with Sandbox(rate_limit_per_minute=10) as sandbox:
        caller = Caller(sandbox, spans, metrics, flowscope_logs)
        auth = caller.bearer()
        assert caller.client.get(f"/api/v2/flows/{INBOUND}", headers=auth).status_code == 200
        assert caller.client.get(f"/api/v2/flows/{ORDER_STATUS}", headers=auth).status_code == 200
        assert caller.client.post(LAUNCH, json=GOOD, headers=auth).status_code == 200
        caller.client.close()
    assert [r.operation for r in caller.records] == ["token", "get_flow", "get_flow", "launch"]
    assert [r.hints for r in caller.records] == [(), (), (), ()]
    assert [hint_events(s) for s in spans.all()] == [[], [], [], []]
    assert [r for r in flowscope_logs.records if r.levelname == "WARNING"] == []


def test_a_token_flowscope_did_not_see_issued_is_not_called_expired(
    spans: Spans, metrics: FlowMetrics, flowscope_logs: LogCapture
) -> None:
    with Sandbox(token_ttl=0) as sandbox:
        caller = Caller(sandbox, spans, metrics, flowscope_logs)
        token = sandbox.issue_token()  # not through the instrumented client
        caller.client.post(LAUNCH, json=GOOD, headers={"Authorization": f"Bearer {token}"})
        caller.client.close()
    (hint,) = caller.records[-1].hints
    assert hint.code == "auth-token-invalid"
    assert "flowscope did not see this token issued" in hint.message
    assert "passed its expires_in" not in hint.message


def test_a_flow_seen_on_another_host_is_named_in_its_404(
    spans: Spans, metrics: FlowMetrics, flowscope_logs: LogCapture
) -> None:
    others = [flow for flow in default_flows() if flow.id != ORDER_STATUS]
    with Sandbox() as home, Sandbox(flows=others) as elsewhere:
        at_home = Caller(home, spans, metrics, flowscope_logs)
        assert at_home.client.post(LAUNCH, json=GOOD, headers=at_home.bearer()).status_code == 200
        away = Caller(elsewhere, spans, metrics, flowscope_logs)
        assert away.client.post(LAUNCH, json=GOOD, headers=away.bearer()).status_code == 404
        home_host, away_host = (
            home.url.removeprefix("http://"),
            elsewhere.url.removeprefix("http://"),
        )
        at_home.client.close()
        away.client.close()
    (hint,) = away.records[-1].hints
    assert hint == flowscope.Hint(
        "flow-not-found",
        f"flow {ORDER_STATUS} is not found on {away_host}, but flowscope saw it answer on "
        f"{home_host}: the org is there; send the call to {home_host}, the API host of the "
        "org's region",
    )


def test_the_token_is_remembered_only_as_a_keyed_hash(fresh_memory: AdviceMemory) -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.secret-token-value.sig"
    fresh_memory.token_issued(token, 3600, "login.mypurecloud.com")
    assert fresh_memory.token(token) is not None
    assert fresh_memory.token(token + "x") is None
    stored = repr(vars(fresh_memory)) + repr(list(fresh_memory._tokens))
    assert "secret-token-value" not in stored
    # Another memory (another process) hashes the same token differently.
    other = AdviceMemory()
    other.token_issued(token, 3600, "login.mypurecloud.com")
    assert set(other._tokens).isdisjoint(fresh_memory._tokens)


def test_the_memory_is_bounded_oldest_first() -> None:
    memory = AdviceMemory(max_tokens=2, max_flows=2, max_hosts=2)
    for n in range(3):
        memory.token_issued(f"token-{n}", 60, "h")
        memory.flow_type(f"flow-{n}", "WORKFLOW")
        memory.flow_answered(f"flow-{n}", "h")
        memory.call_made(f"host-{n}")
    assert [memory.token(f"token-{n}") is not None for n in range(3)] == [False, True, True]
    assert [memory.type_of(f"flow-{n}") for n in range(3)] == [None, "WORKFLOW", "WORKFLOW"]
    assert [memory.hosts_of(f"flow-{n}") for n in range(3)] == [(), ("h",), ("h",)]
    now = memory.now()
    assert [memory.calls_within(f"host-{n}", 60, now) for n in range(3)] == [0, 1, 1]


def test_calls_are_counted_per_host_within_the_window_from_many_threads() -> None:
    clock = [1000.0]
    memory = AdviceMemory(clock=lambda: clock[0])

    def work() -> None:
        for _ in range(500):
            memory.call_made("api.example")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    clock[0] = 1030.5
    memory.call_made("api.example")
    assert memory.calls_within("api.example", 60, 1030.5) == 2001
    assert memory.calls_within("api.example", 30, 1030.5) == 1
    assert memory.calls_within("api.example", 3600, 1030.5) is None  # longer than kept
    clock[0] = 2000.0
    memory.call_made("api.example")  # older buckets fall out
    assert memory.calls_within("api.example", 300, 2000.0) == 1


# -- flowscope launch prints the same hint ----------------------------------------------------


@pytest.mark.parametrize("code", list(CASES))
def test_flowscope_launch_prints_exactly_the_hint_of_each_class(code: str) -> None:
    case = CASES[code]
    flow_id, client = {
        "auth-client-invalid": (ORDER_STATUS, ("sandbox-client", "wrong-secret")),
        "permission-missing": (ORDER_STATUS, (VIEWER_CLIENT.id, VIEWER_CLIENT.secret)),
        "flow-not-found": (UNKNOWN, None),
        "flow-deleted": (DELETED, None),
        "flow-type-not-launchable": (INBOUND, None),
    }.get(code, (ORDER_STATUS, None))
    settings = dict(case.sandbox)
    if code == "rate-limited":
        settings["rate_limit_per_minute"] = 2  # the flow and version reads, then the launch
    with Sandbox(**settings) as sandbox:  # type: ignore[arg-type]
        client_id, secret = client or (sandbox.client_id, sandbox.client_secret)
        result = subprocess.run(
            [*CLI, "launch", "--api-base", sandbox.url, "--flow-id", flow_id],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "GENESYS_CLIENT_ID": client_id, "GENESYS_CLIENT_SECRET": secret},
        )
    assert result.returncode == 1, result.stdout + result.stderr
    hints = result.stdout.split("\n  hints:\n", 1)[1].splitlines()
    assert [line.split(":", 1)[0].strip() for line in hints] == [code], result.stdout
    # The counts differ (the CLI reads the flow first); the next step is the same.
    assert case.says[-1] in hints[0], hints[0]
    assert secret not in result.stdout + result.stderr


# -- advise() on its own: what each call shows, and near misses -----------------------------------


def call(**fields: object) -> FailedCall:
    base = FailedCall(
        operation="launch",
        template=LAUNCH,
        host="api.mypurecloud.com",
        status=400,
        at=100.0,
        flow_id=ORDER_STATUS,
        bearer="token-a",
    )
    return replace(base, **fields)  # type: ignore[arg-type]


@pytest.fixture
def memory() -> AdviceMemory:
    clock = [100.0]
    return AdviceMemory(clock=lambda: clock[0])


def codes(failed: FailedCall, memory: AdviceMemory) -> list[str]:
    return [hint.code for hint in advise(failed, memory)]


def test_a_token_refused_before_its_expiry_says_so_and_names_another_region() -> None:
    clock = [100.0]
    memory = AdviceMemory(clock=lambda: clock[0])
    memory.token_issued("token-a", 86400, "login.mypurecloud.com")
    (hint,) = advise(call(status=401, host="api.mypurecloud.ie", at=160.0), memory)
    assert hint.code == "auth-token-invalid"
    assert (
        "flowscope saw this token issued 60 s before this call with expires_in 24 h, so it had "
        "not yet passed its expires_in; it was issued by login.mypurecloud.com but sent to "
        "api.mypurecloud.ie: a token works only in the region whose login host issued it"
    ) in hint.message


def test_a_call_without_a_token_is_told_to_send_one(memory: AdviceMemory) -> None:
    (hint,) = advise(call(status=401, error_code="authentication.required", bearer=None), memory)
    assert hint.message.startswith(
        "the call carried no Authorization header: send 'Authorization: Bearer <access_token>'"
    )


def test_near_misses_of_auth_token_invalid(memory: AdviceMemory) -> None:
    # A 401 from the token endpoint is the client's credentials, not a token.
    assert codes(call(status=401, operation="token", template="/oauth/token"), memory) == [
        "auth-client-invalid"
    ]
    assert codes(call(status=403), memory) == ["permission-missing"]


def test_near_misses_of_auth_client_invalid(memory: AdviceMemory) -> None:
    token_call = call(operation="token", template="/oauth/token", flow_id=None)
    # A grant type the endpoint does not take is no credentials problem.
    assert codes(replace(token_call, error_code="unsupported_grant_type"), memory) == []
    assert codes(replace(token_call, error_code="invalid_client"), memory) == [
        "auth-client-invalid"
    ]
    assert codes(call(status=401), memory) == ["auth-token-invalid"]


def test_near_misses_of_permission_missing(memory: AdviceMemory) -> None:
    params = {"permissions": "architect:flow:launch"}
    assert codes(call(status=401, message_params=params), memory) == ["auth-token-invalid"]
    assert codes(call(status=400, message_params=params), memory) == []
    # Without messageParams the hint names only what the operation needs, as such.
    (hint,) = advise(call(status=403, operation="get_execution", flow_id=None), memory)
    assert "the error names none, and a get_execution needs architect:flowExecution:view" in (
        hint.message
    )


def test_near_misses_of_flow_not_found(memory: AdviceMemory) -> None:
    execution = "/api/v2/flows/executions/{flowExecutionId}"
    assert codes(call(status=404, operation="get_execution", template=execution), memory) == []
    in_path = "/api/v2/flows/{flowId}/executions"
    assert codes(call(status=404, template=in_path), memory) == []
    assert codes(call(status=404, flow_id=None), memory) == []
    assert codes(call(status=410), memory) == ["flow-deleted"]


def test_a_missing_version_of_a_flow_seen_here_is_not_called_a_missing_flow(
    memory: AdviceMemory,
) -> None:
    memory.flow_answered(ORDER_STATUS, "api.mypurecloud.com")
    version = "/api/v2/flows/{flowId}/versions/{versionId}"
    (hint,) = advise(
        call(status=404, operation="get_flow", template=version, flow_version="9.0"), memory
    )
    assert hint.code == "flow-not-found"
    assert "answered on api.mypurecloud.com before, but version 9.0 is not found" in hint.message


def test_near_misses_of_flow_deleted(memory: AdviceMemory) -> None:
    execution = "/api/v2/flows/executions/{flowExecutionId}"
    assert codes(call(status=410, operation="get_execution", template=execution), memory) == []
    assert codes(call(status=404), memory) == ["flow-not-found"]


def test_near_misses_of_flow_type_not_launchable(memory: AdviceMemory) -> None:
    assert codes(call(status=400), memory) == []  # type never learned
    memory.flow_type(ORDER_STATUS, "WORKFLOW")
    assert codes(call(status=400), memory) == []
    memory.flow_type(ORDER_STATUS, "BUSINESSPROCESS")  # a type flowscope cannot vouch for
    assert codes(call(status=400), memory) == []
    memory.flow_type(ORDER_STATUS, "inboundcall")
    assert codes(call(status=400), memory) == ["flow-type-not-launchable"]
    # Load or permission refusals have their own cause, whatever the type.
    assert codes(call(status=429), memory) == ["rate-limited"]
    assert codes(call(status=403), memory) == ["permission-missing"]
    assert codes(call(status=400, operation="get_flow"), memory) == []


def test_near_misses_of_rate_limited(memory: AdviceMemory) -> None:
    assert codes(call(status=503, retry_after="5"), memory) == ["server-error"]
    full = RateLimit(allowed=300, count=300, reset_s=12)
    assert codes(call(status=200, rate_limit=full), memory) == []


def test_a_429_that_shows_nothing_of_its_limit_claims_nothing(memory: AdviceMemory) -> None:
    (hint,) = advise(call(status=429, host="api.mypurecloud.de"), memory)
    assert hint.message == (
        "rate limited: this process sent 0 flow calls to api.mypurecloud.de in the last 60 s. "
        "Next: wait for the window to reset before the next call, then spread the calls out "
        "(a queue or a token bucket)"
    )


def test_a_429_on_the_token_endpoint_says_to_reuse_tokens(memory: AdviceMemory) -> None:
    (hint,) = advise(
        call(
            status=429,
            operation="token",
            template="/oauth/token",
            limit={"key": "oauth.token.rate.per.minute", "value": 300},
            retry_after="20",
        ),
        memory,
    )
    assert hint.message.startswith(
        "rate limited: the limit (oauth.token.rate.per.minute) is 300 requests per 60 s; "
        "Retry-After asks for 20 s"
    )
    assert hint.message.endswith(
        "reuse a token until its expires_in instead of requesting one per call"
    )


def test_near_misses_of_server_error(memory: AdviceMemory) -> None:
    assert codes(call(status=429), memory) == ["rate-limited"]
    assert codes(call(status=400), memory) == []
    assert codes(call(status=499), memory) == []
    (hint,) = advise(
        call(status=504, error_code="request.timeout", operation="get_flow", template="/x"),
        memory,
    )
    assert hint.code == "server-error"
    assert hint.message.startswith("the platform timed out (504 request.timeout): usually")
    assert "twice" not in hint.message  # only a launch can start a flow twice


def test_a_successful_status_gets_no_hint(memory: AdviceMemory) -> None:
    memory.flow_type(ORDER_STATUS, "INBOUNDCALL")
    for status in (200, 202, 204, 302):
        assert advise(call(status=status), memory) == []


def test_hostile_values_in_a_hint_stay_on_one_short_line(memory: AdviceMemory) -> None:
    hostile = "a\nforged log line\x00" + "x" * 500
    (hint,) = advise(call(status=410, entity_name=hostile), memory)
    assert hint.message.isprintable()
    assert "forged log line_" in hint.message
    assert len(hint.message) < 400


def test_hints_can_be_turned_off(spans: Spans, metrics: FlowMetrics) -> None:
    records: list[CallRecord] = []
    with Sandbox() as sandbox:
        client = flowscope.instrument(
            httpx.Client(base_url=sandbox.url),
            config=flowscope.FlowScopeConfig(hints=False),
            tracer_provider=spans.provider,
            metrics=metrics,
            on_record=records.append,
        )
        auth = {"Authorization": f"Bearer {sandbox.issue_token()}"}
        assert client.post(LAUNCH, json={"flowId": UNKNOWN}, headers=auth).status_code == 404
        client.close()
    assert records[-1].hints == ()


def test_the_demo_report_counts_failed_calls_with_and_without_a_hint() -> None:
    from collections import Counter

    from flowscope.cli._report import CallTally, Report, _render_plain
    from flowscope.cli._traffic import Stats

    def record(status: int | None, hints: tuple[flowscope.Hint, ...] = ()) -> CallRecord:
        outcome = {None: "transport_error", 200: "success", 404: "client_error"}[status]
        return CallRecord(
            operation="launch",
            template=LAUNCH,
            method="POST",
            flow_id=ORDER_STATUS,
            flow_name=None,
            flow_version=None,
            execution_id=None,
            url="http://api.example/api/v2/flows/executions",
            status_code=status,
            outcome=outcome,
            duration_s=0.01,
            exception_type="ReadTimeout" if status is None else None,
            hints=hints,
        )

    tally = CallTally()
    for each in (
        record(200),
        record(404, (flowscope.Hint("flow-not-found", "check the id"),)),
        record(404),
        record(None),
    ):
        tally(each)
    report = Report.build(tally, {}, Stats(), default_flows())
    text = _render_plain(report, interrupted=False)
    assert "\nfailed calls with a hint: 1 of 3 (33%)\n" in text
    assert "\n  without one: 404 __none__ ×1\n  without one: ReadTimeout __none__ ×1\n" in text
    assert Counter(tally.unhinted) == Counter(
        {("404", "__none__"): 1, ("ReadTimeout", "__none__"): 1}
    )


def test_an_async_client_gets_the_same_hints(spans: Spans, metrics: FlowMetrics) -> None:
    import asyncio

    records: list[CallRecord] = []
    sandbox = Sandbox()

    async def scenario() -> None:
        transport = flowscope.AsyncFlowScopeTransport(
            sandbox.transport(),
            tracer_provider=spans.provider,
            metrics=metrics,
            on_record=records.append,
        )
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
            reply = await client.send(token_request("http://sandbox", "sandbox-client", "nope"))
            assert reply.status_code == 401
            auth = {"Authorization": f"Bearer {sandbox.issue_token(VIEWER_CLIENT)}"}
            assert (await client.post(LAUNCH, json=GOOD, headers=auth)).status_code == 403

    asyncio.run(scenario())
    assert [[h.code for h in r.hints] for r in records] == [
        ["auth-client-invalid"],
        ["permission-missing"],
    ]
    assert [[code for code, _ in hint_events(s)] for s in spans.all()] == [
        ["auth-client-invalid"],
        ["permission-missing"],
    ]
