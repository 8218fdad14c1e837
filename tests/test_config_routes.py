"""The route table (SPEC §3) and FlowScopeConfig, including FLOWSCOPE_* variables."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import CollectorRegistry

import flowscope
from flowscope import DEFAULT_ROUTES, FlowScopeConfig, Route
from flowscope._routes import RouteTable

from .conftest import Spans

TABLE = RouteTable(DEFAULT_ROUTES)
FLOW = "6e1a4b2c-0c7d-4d59-9f6e-2b0a1d2f3c4d"


@pytest.mark.parametrize(
    ("method", "path", "operation", "template"),
    [
        ("POST", "/api/v2/flows/executions", "launch", "/api/v2/flows/executions"),
        (
            "GET",
            "/api/v2/flows/executions/abc",
            "get_execution",
            "/api/v2/flows/executions/{flowExecutionId}",
        ),
        ("GET", f"/api/v2/flows/{FLOW}", "get_flow", "/api/v2/flows/{flowId}"),
        (
            "GET",
            f"/api/v2/flows/{FLOW}/versions/3.0",
            "get_flow",
            "/api/v2/flows/{flowId}/versions/{versionId}",
        ),
        (
            "GET",
            f"/api/v2/flows/{FLOW}/latestconfiguration",
            "get_flow",
            "/api/v2/flows/{flowId}/latestconfiguration",
        ),
        ("POST", "/oauth/token", "token", "/oauth/token"),
        ("POST", "/api/v2/flows/executions/", "launch", "/api/v2/flows/executions"),
    ],
)
def test_default_routes_match_the_flow_api(
    method: str, path: str, operation: str, template: str
) -> None:
    match = TABLE.match(method, path)
    assert match is not None
    assert (match.operation, match.template) == (operation, template)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v2/flows/executions"),  # a literal segment is never read as a flow id
        ("GET", "/api/v2/flows/divisionviews"),
        ("GET", "/api/v2/flows/instances"),
        ("DELETE", f"/api/v2/flows/{FLOW}"),
        ("GET", "/api/v2/users/me"),
        ("GET", "/oauth/token"),
    ],
)
def test_paths_that_are_not_flow_calls_do_not_match(method: str, path: str) -> None:
    assert TABLE.match(method, path) is None


def test_get_flow_takes_flow_id_and_version_from_the_path() -> None:
    match = TABLE.match("GET", f"/api/v2/flows/{FLOW}/versions/7.0")
    assert match is not None
    assert dict(match.params) == {"flowId": FLOW, "versionId": "7.0"}


def test_extra_routes_are_added_and_routes_can_be_replaced(spans: Spans) -> None:
    extra = Route("publish", "POST", "/api/v2/flows/actions/publish")
    config = FlowScopeConfig(extra_routes=(extra,))
    assert extra in config.route_list and DEFAULT_ROUTES[0] in config.route_list
    only = FlowScopeConfig(routes=(Route("launch", "POST", "/proxy/launch"),))
    assert only.route_list == (Route("launch", "POST", "/proxy/launch"),)

    transport = flowscope.FlowScopeTransport(
        httpx.MockTransport(lambda r: httpx.Response(200, json={"id": "e1"})),
        config=only,
        tracer_provider=spans.provider,
        metrics=flowscope.FlowMetrics(CollectorRegistry()),
    )
    with httpx.Client(transport=transport) as client:
        client.post("http://x.test/proxy/launch", json={"flowId": "f-1"})
        client.post("http://x.test/api/v2/flows/executions", json={"flowId": "f-2"})
    launched = [dict(s.attributes or {}) for s in spans.all()]
    assert launched[0]["flow.id"] == "f-1" and launched[0]["flow.execution.id"] == "e1"
    assert "flow.id" not in launched[1]  # the default route was replaced


def test_config_from_env_reads_every_variable() -> None:
    env = {
        "FLOWSCOPE_CAPTURE_LIMIT_BYTES": "1024",
        "FLOWSCOPE_FLOW_NAMES": f"{FLOW}=Order Status,abc=Survey",
        "FLOWSCOPE_REDACT_KEYS": "email, phone",
        "FLOWSCOPE_REDACT_PATTERNS": r'["\\d{16}"]',
        "FLOWSCOPE_CAPTURE_REQUEST_BODY": "false",
        "FLOWSCOPE_HINTS": "no",
        "FLOWSCOPE_LOG_FAILURES": "0",
        "FLOWSCOPE_LEARN_SCHEMAS": "off",
        "FLOWSCOPE_REDACT_PII": "false",
    }
    assert FlowScopeConfig.from_env({}).redact_pii is True
    config = FlowScopeConfig.from_env(env)
    assert config.capture_limit_bytes == 1024
    assert dict(config.flow_names) == {FLOW: "Order Status", "abc": "Survey"}
    assert config.redact_keys == ("email", "phone")
    assert config.redact_patterns == (r"\d{16}",)
    assert not (config.capture_request_body or config.hints or config.log_failures)
    assert not config.learn_schemas
    assert config.redact_pii is False
    json_names = FlowScopeConfig.from_env({"FLOWSCOPE_FLOW_NAMES": '{"a": "A"}'}, hints=False)
    assert dict(json_names.flow_names) == {"a": "A"} and json_names.hints is False


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("FLOWSCOPE_CAPTURE_LIMIT_BYTES", "lots", "integer"),
        ("FLOWSCOPE_CAPTURE_LIMIT_BYTES", "-1", "non-negative"),
        ("FLOWSCOPE_HINTS", "maybe", "true or false"),
        ("FLOWSCOPE_REDACT_PII", "sometimes", "true or false"),
        ("FLOWSCOPE_FLOW_NAMES", "{not json", "not valid JSON"),
        ("FLOWSCOPE_FLOW_NAMES", "justanid", "id=name"),
    ],
)
def test_bad_environment_values_give_a_clear_error(name: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        FlowScopeConfig.from_env({name: value})
    assert name in str(info.value)


@pytest.mark.parametrize("blank", ["", " ", "\t", "  \n"])
def test_a_blank_variable_means_unset_for_every_option(blank: str) -> None:
    from dataclasses import fields

    names = [f"FLOWSCOPE_{f.name.upper()}" for f in fields(FlowScopeConfig)]
    assert "FLOWSCOPE_LOG_FAILURES" in names and "FLOWSCOPE_HINTS" in names
    config = FlowScopeConfig.from_env(dict.fromkeys(names, blank))
    assert config == FlowScopeConfig()
    assert config.log_failures and config.hints and config.learn_schemas
    assert config.capture_request_body


def test_instrumenting_again_with_other_settings_is_refused() -> None:
    client = httpx.Client()
    flowscope.instrument(client, config=FlowScopeConfig(log_failures=True))
    with pytest.raises(
        ValueError, match=r"already instrumented with different settings \(config\)"
    ):
        flowscope.instrument(client, config=FlowScopeConfig(log_failures=False))
    flowscope.uninstrument(client)
    flowscope.instrument(client, config=FlowScopeConfig(log_failures=False))  # after undoing: fine
    client.close()


def test_config_is_frozen() -> None:
    config = FlowScopeConfig(flow_names={"a": "A"})
    with pytest.raises(AttributeError):
        config.hints = False  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.flow_names["b"] = "B"  # type: ignore[index]
