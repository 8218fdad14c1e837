"""Executions followed to their outcome: every poll read, each outcome counted once, the poll's
span linked to the launch's, hints when the launch explains a failure; and the same without any
polling code (``follow_executions=True``). Against the loopback sandbox."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from prometheus_client import CollectorRegistry

import flowscope
from flowscope import CallRecord, FlowMetrics, FlowScopeConfig
from flowscope._executions import ExecutionStore, TrackedLaunch
from flowscope.sandbox import Sandbox, SandboxFlow

from .conftest import Spans

LAUNCH = "/api/v2/flows/executions"
CALLBACK = "2f6e8a41-0c5b-4d7e-8a3f-91b2c4d6e7f8"  # needs Flow.phoneNumber, ignores unprefixed keys
ORDER_STATUS = "9b1f3c2e-6a4d-4e8b-9f21-3c7d5a0e8b14"
# The launch's "phoneNumber" lacks the Flow. prefix: accepted, dropped, the flow fails later.
IGNORED_INPUT = {"flowId": CALLBACK, "inputData": {"phoneNumber": "+3312345678"}}
MISSING_CODE = "flow.variable.not.set"
FOLLOW = {
    "follow_executions": True,
    "follow_initial_interval_s": 0.01,
    "follow_max_interval_s": 0.02,
    "follow_max_polls_per_minute": 1_000_000,
}


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def executions(registry: CollectorRegistry) -> dict[tuple[str, str, str], float]:
    """Every ``flowscope_executions_total`` series: (flow, status, error_code) -> value."""
    return {
        (s.labels["flow"], s.labels["status"], s.labels["error_code"]): s.value
        for family in registry.collect()
        for s in family.samples
        if s.name == "flowscope_executions_total"
    }


def by_operation(spans: list[ReadableSpan], operation: str) -> list[ReadableSpan]:
    return [s for s in spans if (s.attributes or {}).get("flow.operation") == operation]


def hint_codes(span: ReadableSpan) -> list[str]:
    return [str((e.attributes or {})["hint.code"]) for e in span.events if e.name == "flow.hint"]


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(execution_seconds=0, seed=3) as s:
        yield s


def authed(sandbox: Sandbox) -> dict[str, str]:
    return {"Authorization": f"Bearer {sandbox.issue_token()}"}


def assert_failed_once(registry: CollectorRegistry, spans: Spans, polls: int) -> None:
    """One FAILED outcome counted, one duration observed, every poll linked to the launch."""
    assert executions(registry) == {(CALLBACK, "FAILED", MISSING_CODE): 1.0}
    duration = "flowscope_execution_duration_seconds_count"
    assert sample(registry, duration, flow=CALLBACK, status="FAILED") == 1.0
    assert sample(registry, "flowscope_executions_in_flight", flow=CALLBACK) == 0.0
    finished = spans.all()
    (launch,) = by_operation(finished, "launch")
    poll_spans = by_operation(finished, "get_execution")
    assert len(poll_spans) == polls
    launch_context = launch.get_span_context()
    for poll in poll_spans:
        attributes = poll.attributes or {}
        assert attributes["flow.execution.status"] == "FAILED"
        assert attributes["flow.execution.error.code"] == MISSING_CODE
        assert attributes["flow.execution.error.message"] == (
            "Flow Callback Scheduler failed: variable Flow.phoneNumber has no value."
        )
        assert attributes["flow.id"] == CALLBACK
        assert [(link.context.trace_id, link.context.span_id) for link in poll.links] == [
            (launch_context.trace_id, launch_context.span_id)
        ]
        assert [e.name for e in poll.events if e.name == "flow.execution.error"] == [
            "flow.execution.error"
        ]
        assert hint_codes(poll) == ["execution-input-ignored"]


def test_a_launch_polled_three_times_to_failed_counts_once_and_links_each_poll(
    sandbox: Sandbox, spans: Spans, metrics: FlowMetrics, registry: CollectorRegistry
) -> None:
    records: list[CallRecord] = []
    client = flowscope.instrument(
        httpx.Client(base_url=sandbox.url, headers=authed(sandbox)),
        tracer_provider=spans.provider,
        metrics=metrics,
        on_record=records.append,
    )
    with client:
        execution_id = client.post(LAUNCH, json=IGNORED_INPUT).json()["id"]
        bodies = [client.get(f"{LAUNCH}/{execution_id}").json() for _ in range(3)]
    assert [b["status"] for b in bodies] == ["FAILED"] * 3
    assert_failed_once(registry, spans, polls=3)
    outcomes = [r.execution for r in records if r.operation == "get_execution"]
    assert [(o.status, o.counted, o.error_code) for o in outcomes if o is not None] == [
        ("FAILED", True, MISSING_CODE),
        ("FAILED", False, MISSING_CODE),
        ("FAILED", False, MISSING_CODE),
    ]
    # The exemplar of the outcome is the launch's trace, not the poll's.
    launch_trace = records[0].trace_id
    assert launch_trace is not None
    assert outcomes[0] is not None and outcomes[0].launch_trace_id == launch_trace


def test_async_polling_counts_once_and_links_each_poll(
    sandbox: Sandbox, spans: Spans, metrics: FlowMetrics, registry: CollectorRegistry
) -> None:
    async def run() -> None:
        client = flowscope.instrument(
            httpx.AsyncClient(base_url=sandbox.url, headers=authed(sandbox)),
            tracer_provider=spans.provider,
            metrics=metrics,
        )
        async with client:
            execution_id = (await client.post(LAUNCH, json=IGNORED_INPUT)).json()["id"]
            for _ in range(3):
                await client.get(f"{LAUNCH}/{execution_id}")

    asyncio.run(run())
    assert_failed_once(registry, spans, polls=3)


def test_following_needs_no_polling_code_sync(
    sandbox: Sandbox, spans: Spans, metrics: FlowMetrics, registry: CollectorRegistry
) -> None:
    client = flowscope.instrument(
        httpx.Client(base_url=sandbox.url, headers=authed(sandbox)),
        config=FlowScopeConfig(**FOLLOW),
        tracer_provider=spans.provider,
        metrics=metrics,
    )
    with client:
        client.post(LAUNCH, json=IGNORED_INPUT)
        assert flowscope.wait_for_executions(client, timeout=30) is True
    assert_failed_once(registry, spans, polls=1)
    assert [t.name for t in threading.enumerate() if t.name == "flowscope-follow"] == []


def test_following_needs_no_polling_code_async(
    sandbox: Sandbox, spans: Spans, metrics: FlowMetrics, registry: CollectorRegistry
) -> None:
    left: list[str] = []

    async def run() -> None:
        client = flowscope.instrument(
            httpx.AsyncClient(base_url=sandbox.url, headers=authed(sandbox)),
            config=FlowScopeConfig(**FOLLOW),
            tracer_provider=spans.provider,
            metrics=metrics,
        )
        async with client:
            await client.post(LAUNCH, json=IGNORED_INPUT)
            assert await flowscope.wait_for_executions(client, timeout=30) is True
        current = asyncio.current_task()
        left.extend(t.get_name() for t in asyncio.all_tasks() if t is not current)

    asyncio.run(run())
    assert_failed_once(registry, spans, polls=1)
    assert left == []


def test_poll_without_flow_version_counts_under_the_launch_flow(
    spans: Spans, metrics: FlowMetrics, registry: CollectorRegistry
) -> None:
    def platform(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, json={"id": "exec-1", "name": "x"})
        return httpx.Response(
            200,
            json={
                "id": "exec-1",
                "status": "COMPLETED",
                "dateLaunched": "2026-01-01T10:00:00.000Z",
                "dateCompleted": "2026-01-01T10:00:02.500Z",
            },
        )

    config = FlowScopeConfig(flow_names={ORDER_STATUS: "Order Status"})
    transport = flowscope.FlowScopeTransport(
        httpx.MockTransport(platform),
        config=config,
        tracer_provider=spans.provider,
        metrics=metrics,
    )
    with httpx.Client(transport=transport, base_url="http://platform.test") as client:
        client.post(LAUNCH, json={"flowId": ORDER_STATUS})
        assert sample(registry, "flowscope_executions_in_flight", flow="Order Status") == 1.0
        client.get(f"{LAUNCH}/exec-1")
    assert executions(registry) == {("Order Status", "COMPLETED", "__none__"): 1.0}
    assert sample(
        registry,
        "flowscope_execution_duration_seconds_sum",
        flow="Order Status",
        status="COMPLETED",
    ) == pytest.approx(2.5)
    assert sample(registry, "flowscope_executions_in_flight", flow="Order Status") == 0.0
    (poll,) = by_operation(spans.all(), "get_execution")
    assert (poll.attributes or {})["flow.execution.duration_s"] == pytest.approx(2.5)


def test_launches_forgotten_without_an_outcome_count_as_unobserved(
    sandbox: Sandbox, metrics: FlowMetrics, registry: CollectorRegistry
) -> None:
    client = flowscope.instrument(
        httpx.Client(base_url=sandbox.url, headers=authed(sandbox)),
        config=FlowScopeConfig(max_tracked_executions=2),
        metrics=metrics,
    )
    with client:
        for _ in range(5):
            client.post(LAUNCH, json={"flowId": ORDER_STATUS})
    assert executions(registry) == {(ORDER_STATUS, "__unobserved__", "__none__"): 3.0}
    assert sample(registry, "flowscope_executions_in_flight", flow=ORDER_STATUS) == 2.0


def test_the_store_forgets_by_count_and_by_age_and_settles_once() -> None:
    now = [0.0]
    store = ExecutionStore(max_size=3, ttl_s=10, clock=lambda: now[0])

    def launch(execution_id: str) -> TrackedLaunch:
        return TrackedLaunch(execution_id, "f", "f", None, None, None, None, 0.0)

    assert store.remember(launch("a")) == []
    assert store.remember(launch("b")) == []
    first, _, _ = store.settle("b", lambda: launch("never"))
    again, entry, _ = store.settle("b", lambda: launch("never"))
    assert (first, again, entry.execution_id) == (True, False, "b")
    store.remember(launch("c"))
    forgotten = store.remember(launch("d"))  # over the count: "a" goes, its outcome unseen
    assert [f.execution_id for f in forgotten] == ["a"]
    now[0] = 10.0  # "b" (settled), "c" and "d" reach the ttl
    assert [f.execution_id for f in store.expire()] == ["c", "d"]
    assert len(store) == 0


def test_follow_stops_at_the_poll_budget(sandbox: Sandbox, metrics: FlowMetrics) -> None:
    config = FlowScopeConfig(**{**FOLLOW, "follow_max_polls_per_minute": 7})
    client = flowscope.instrument(
        httpx.Client(base_url=sandbox.url, headers=authed(sandbox)),
        config=config,
        metrics=metrics,
    )
    with client:
        for _ in range(10):
            client.post(LAUNCH, json={"flowId": ORDER_STATUS})
        # Seven polls fit in the minute; the three others wait for the window to move on.
        deadline = time.monotonic() + 30
        while sandbox.stats.get("get_execution", 0) < 7 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert flowscope.wait_for_executions(client, timeout=0.3) is False
        assert sandbox.stats["get_execution"] == 7
    assert sandbox.stats["get_execution"] == 7
    assert [t.name for t in threading.enumerate() if t.name == "flowscope-follow"] == []


def test_launches_beyond_the_follow_queue_are_dropped_and_counted(
    sandbox: Sandbox, metrics: FlowMetrics, registry: CollectorRegistry
) -> None:
    config = FlowScopeConfig(**{**FOLLOW, "follow_queue_size": 2, "follow_initial_interval_s": 60})
    client = flowscope.instrument(
        httpx.Client(base_url=sandbox.url, headers=authed(sandbox)), config=config, metrics=metrics
    )
    with client:
        statuses = [
            client.post(LAUNCH, json={"flowId": ORDER_STATUS}).status_code for _ in range(5)
        ]
    assert statuses == [200] * 5
    assert sample(registry, "flowscope_follow_dropped_total", reason="queue_full") == 3.0
    assert sandbox.stats.get("get_execution", 0) == 0  # closing stopped them before any poll


def test_a_thousand_followed_launches_each_count_once(
    sandbox: Sandbox, metrics: FlowMetrics, registry: CollectorRegistry
) -> None:
    client = flowscope.instrument(
        httpx.Client(base_url=sandbox.url, headers=authed(sandbox)),
        config=FlowScopeConfig(**FOLLOW),
        metrics=metrics,
    )
    flows = [f.id for f in sandbox.flows if not f.deleted and f.type == "WORKFLOW"]
    with client:
        for i in range(1000):
            client.post(LAUNCH, json={"flowId": flows[i % len(flows)]})
        assert flowscope.wait_for_executions(client, timeout=120) is True
    counted = executions(registry)
    assert sum(counted.values()) == 1000.0
    assert {status for _, status, _ in counted} <= {"COMPLETED", "FAILED"}
    polls = sandbox.stats["get_execution"]
    requests = sum(
        sample(
            registry,
            "flowscope_requests_total",
            flow=f,
            operation="get_execution",
            method="GET",
            status_code="200",
        )
        for f in flows
    )
    assert requests == polls == 1000.0  # the outcome is there at the first poll
    assert sum(sample(registry, "flowscope_executions_in_flight", flow=f) for f in flows) == 0.0
    assert [t.name for t in threading.enumerate() if t.name == "flowscope-follow"] == []


def test_sandbox_stopped_mid_way_leaves_the_callers_calls_unaffected(
    metrics: FlowMetrics, registry: CollectorRegistry
) -> None:
    own = Sandbox(execution_seconds=60).start()  # every execution still running at the stop
    headers = authed(own)
    config = FlowScopeConfig(**FOLLOW)
    client = flowscope.instrument(
        httpx.Client(base_url=own.url, headers=headers), config=config, metrics=metrics
    )
    plain = httpx.Client(base_url=own.url, headers=headers)
    try:
        statuses = [
            client.post(LAUNCH, json={"flowId": ORDER_STATUS}).status_code for _ in range(20)
        ]
        own.stop()
        errors: list[Any] = []
        for c in (client, plain):
            try:
                c.post(LAUNCH, json={"flowId": ORDER_STATUS})
            except httpx.ConnectError as exc:
                errors.append(type(exc))
    finally:
        client.close()
        plain.close()
        own.stop()
    assert statuses == [200] * 20
    assert errors == [httpx.ConnectError, httpx.ConnectError]  # as without flowscope
    assert [t.name for t in threading.enumerate() if t.name == "flowscope-follow"] == []
    assert sample(registry, "flowscope_internal_errors_total", stage="follow") == 0.0


def test_hints_name_a_declared_input_the_launch_did_not_send_and_nested_inputs(
    sandbox: Sandbox, spans: Spans, metrics: FlowMetrics
) -> None:
    client = flowscope.instrument(
        httpx.Client(base_url=sandbox.url, headers=authed(sandbox)),
        tracer_provider=spans.provider,
        metrics=metrics,
    )
    with client:
        client.get(f"/api/v2/flows/{CALLBACK}/versions/latest")  # the schema is learned
        nested = {
            "flowId": CALLBACK,
            "inputData": {"callback": {"phoneNumber": "+33123"}, "Flow.customerId": "c-1"},
        }
        execution_id = client.post(LAUNCH, json=nested).json()["id"]
        client.get(f"{LAUNCH}/{execution_id}")
    (poll,) = by_operation(spans.all(), "get_execution")
    # Of the four declared inputs not sent, the one the flowErrorInfo names.
    assert hint_codes(poll) == ["execution-input-nested", "execution-input-missing"]
    missing = [
        (e.attributes or {})["hint.message"]
        for e in poll.events
        if (e.attributes or {}).get("hint.code") == "execution-input-missing"
    ]
    assert len(missing) == 1 and "'Flow.phoneNumber'" in str(missing[0])
    # Never a value of the payload.
    assert all("+33123" not in str((e.attributes or {}).values()) for e in poll.events)


def test_sandbox_executions_end_error_terminated_and_data_action_failures() -> None:
    schema = {"type": "object", "properties": {}, "additionalProperties": False}

    def flow(name: str, **rates: float) -> SandboxFlow:
        return SandboxFlow(
            id=f"00000000-0000-4000-8000-{len(name):012d}",
            name=name,
            version="1.0",
            input_schema=schema,
            output_schema={"type": "object", "properties": {}},
            **rates,  # type: ignore[arg-type]
        )

    errors_flow = flow("Err", error_rate=1.0)
    ended = flow("Ended", terminate_rate=1.0)
    failing = flow("Failing", fail_rate=1.0)
    own = Sandbox(flows=[errors_flow, ended, failing], execution_seconds=0, seed=5)
    with own, httpx.Client(base_url=own.url, headers=authed(own)) as c:

        def outcome(f: SandboxFlow) -> dict[str, Any]:
            execution_id = c.post(LAUNCH, json={"flowId": f.id}).json()["id"]
            body: dict[str, Any] = c.get(f"{LAUNCH}/{execution_id}").json()
            return body

        error = outcome(errors_flow)
        terminated = outcome(ended)
        codes = {outcome(failing)["flowErrorInfo"]["code"] for _ in range(12)}
    assert (error["status"], error["flowErrorInfo"]["code"]) == ("ERROR", "internal.server.error")
    assert terminated["status"] == "TERMINATED"
    assert "flowErrorInfo" not in terminated
    assert codes == {"flow.data.action.failed", "flow.data.action.timeout"}


def test_genesys_sdk_get_flows_execution_counts_once_and_links_to_the_launch(
    sandbox: Sandbox, spans: Spans, metrics: FlowMetrics, registry: CollectorRegistry
) -> None:
    from PureCloudPlatformClientV2 import ApiClient, ArchitectApi, FlowExecutionLaunchRequest

    from flowscope.genesys import FlowScopeHttpClient

    api = ApiClient(host=sandbox.url)
    with FlowScopeHttpClient(tracer_provider=spans.provider, metrics=metrics) as http:
        api.set_http_client(http)
        api.get_client_credentials_token(sandbox.client_id, sandbox.client_secret)
        architect = ArchitectApi(api)
        request = FlowExecutionLaunchRequest()
        request.flow_id = CALLBACK
        request.input_data = dict(IGNORED_INPUT["inputData"])  # type: ignore[call-overload]
        launched = architect.post_flows_executions(request)
        statuses = [architect.get_flows_execution(launched.id).status for _ in range(3)]
    assert statuses == ["FAILED"] * 3
    assert_failed_once(registry, spans, polls=3)


def test_every_execution_hint_code_is_in_the_readme_hint_table() -> None:
    from pathlib import Path

    from flowscope._executions import EXECUTION_HINT_CODES

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| `execution-input-")]
    assert [row.split("`")[1] for row in rows] == list(EXECUTION_HINT_CODES)


def test_follow_plan_backs_off_honours_retry_after_and_gives_up() -> None:
    from flowscope._follow import FollowPlan, PollBudget, read_poll

    now = [0.0]
    config = FlowScopeConfig(follow_executions=True, follow_timeout_s=100)
    plan = FollowPlan(config, PollBudget(1000, clock=lambda: now[0]), clock=lambda: now[0])
    assert plan.add("e1", "http://api/api/v2/flows/executions/e1", ()) is True
    assert plan.take() == (None, 1.0)  # the first poll waits follow_initial_interval_s
    now[0] = 1.0
    job, _ = plan.take()
    assert job is not None and job.execution_id == "e1"
    assert plan.again(job) is True
    assert plan.take() == (None, 2.0)  # 1 s doubled
    now[0] = 3.0
    job, _ = plan.take()
    assert job is not None
    throttled = read_poll(429, httpx.Headers({"Retry-After": "7"}), b"")
    assert (throttled.done, throttled.retry_after) == (False, 7.0)
    assert plan.again(job, throttled.retry_after) is True
    assert plan.take() == (None, 7.0)  # Retry-After, not the backoff
    now[0] = 100.0
    job, _ = plan.take()
    assert job is not None
    assert plan.again(job) is False  # follow_timeout_s reached: given up
    assert plan.pending == 0


def test_poll_budget_allows_n_polls_in_any_minute() -> None:
    from flowscope._follow import PollBudget

    now = [0.0]
    budget = PollBudget(2, clock=lambda: now[0])
    assert [budget.take(), budget.take()] == [0.0, 0.0]
    now[0] = 15.0
    assert budget.take() == 45.0  # the first poll leaves the window at 60 s
    now[0] = 60.0
    assert budget.take() == 0.0


def test_async_following_with_the_sandbox_stopped_leaves_the_callers_calls_unaffected(
    metrics: FlowMetrics, registry: CollectorRegistry
) -> None:
    own = Sandbox(execution_seconds=60).start()  # every execution still running at the stop
    headers = authed(own)
    errors: list[Any] = []
    left: list[str] = []

    async def run() -> list[int]:
        client = flowscope.instrument(
            httpx.AsyncClient(base_url=own.url, headers=headers),
            config=FlowScopeConfig(**FOLLOW),
            metrics=metrics,
        )
        async with client:
            launches = [await client.post(LAUNCH, json={"flowId": ORDER_STATUS}) for _ in range(20)]
            await asyncio.sleep(0.05)  # let the follower poll a few times
            own.stop()
            try:
                await client.post(LAUNCH, json={"flowId": ORDER_STATUS})
            except httpx.ConnectError as exc:
                errors.append(type(exc))
        current = asyncio.current_task()
        left.extend(t.get_name() for t in asyncio.all_tasks() if t is not current)
        return [r.status_code for r in launches]

    try:
        statuses = asyncio.run(run())
    finally:
        own.stop()
    assert statuses == [200] * 20
    assert errors == [httpx.ConnectError]
    assert left == []
    assert sample(registry, "flowscope_internal_errors_total", stage="follow") == 0.0
