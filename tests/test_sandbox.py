"""The sandbox flow API, driven through a plain httpx client (no flowscope in the path)."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest

from flowscope.sandbox import MAX_BODY_BYTES, Sandbox, SandboxFlow, default_flows, run_forever

LAUNCH = "/api/v2/flows/executions"
ORDER_STATUS = "9b1f3c2e-6a4d-4e8b-9f21-3c7d5a0e8b14"
CALLBACK = "2f6e8a41-0c5b-4d7e-8a3f-91b2c4d6e7f8"
SURVEY = "5d3b7f02-9a1e-4c8d-a6b4-0f2e8c7d1a59"
PAYMENT = "e8f1a6c3-7b4d-4a2e-9c05-6d3f1b8e2a70"
DELETED = "7a0c2e94-1f3b-4d6a-8e57-b9c1d4f2a083"
MISSING = "00000000-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(seed=1, execution_seconds=0.5) as running:
        yield running


@pytest.fixture(scope="module")
def client(sandbox: Sandbox) -> Iterator[httpx.Client]:
    token = sandbox.issue_token()
    with httpx.Client(
        base_url=sandbox.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as authed:
        yield authed


def launch(client: httpx.Client, body: object) -> httpx.Response:
    return client.post(LAUNCH, json=body)


def fields(response: httpx.Response) -> list[str]:
    return [detail["fieldName"] for detail in response.json()["details"]]


def wait_until_done(client: httpx.Client, execution_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        document: dict[str, Any] = client.get(f"{LAUNCH}/{execution_id}").json()
        if document["status"] != "RUNNING":
            return document
        time.sleep(0.05)
    raise AssertionError(f"execution {execution_id} still running")


def basic(client_id: str, secret: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


# -- token endpoint -------------------------------------------------------------------------------


def test_client_credentials_grant_returns_a_bearer_token_the_api_accepts(sandbox: Sandbox) -> None:
    with httpx.Client(base_url=sandbox.url) as anonymous:
        reply = anonymous.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers=basic("sandbox-client", "sandbox-secret"),
        )
        assert reply.status_code == 200
        body = reply.json()
        assert body["token_type"] == "bearer"
        assert body["expires_in"] == 86400
        token = body["access_token"]
        assert token.count(".") == 2  # looks like a JWT, so redaction of JWTs gets exercised
        flow = anonymous.get(
            f"/api/v2/flows/{ORDER_STATUS}", headers={"Authorization": f"Bearer {token}"}
        )
        assert flow.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [basic("sandbox-client", "wrong-secret"), basic("someone-else", "sandbox-secret"), {}],
    ids=["wrong-secret", "wrong-id", "no-credentials"],
)
def test_bad_client_credentials_are_invalid_client(
    sandbox: Sandbox, headers: dict[str, str]
) -> None:
    reply = httpx.post(
        f"{sandbox.url}/oauth/token", data={"grant_type": "client_credentials"}, headers=headers
    )
    assert reply.status_code == 401
    body = reply.json()
    assert body["error"] == "invalid_client"
    assert body["description"]
    assert body["error_description"]


def test_other_grant_type_is_unsupported_grant_type(sandbox: Sandbox) -> None:
    reply = httpx.post(
        f"{sandbox.url}/oauth/token",
        data={"grant_type": "password"},
        headers=basic("sandbox-client", "sandbox-secret"),
    )
    assert reply.status_code == 400
    assert reply.json()["error"] == "unsupported_grant_type"


def test_token_endpoint_allows_300_requests_a_minute() -> None:
    with Sandbox() as own, httpx.Client(base_url=own.url) as anonymous:
        form = {"grant_type": "client_credentials"}
        credentials = basic("sandbox-client", "sandbox-secret")
        statuses = [
            anonymous.post("/oauth/token", data=form, headers=credentials).status_code
            for _ in range(301)
        ]
        assert statuses[:300] == [200] * 300
        assert statuses[300] == 429
        refused = anonymous.post("/oauth/token", data=form, headers=credentials)
        assert refused.json()["code"] == "too.many.requests"
        assert int(refused.headers["Retry-After"]) >= 1
        own.reset_rate_limit()
        assert anonymous.post("/oauth/token", data=form, headers=credentials).status_code == 200


# -- authentication -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "authentication.required"),
        ("Basic c2FuZGJveC1jbGllbnQ6c2FuZGJveC1zZWNyZXQ=", "authentication.required"),
        ("Bearer not-a-token-the-sandbox-issued", "bad.credentials"),
    ],
    ids=["missing", "not-bearer", "unknown"],
)
def test_launch_without_a_valid_bearer_token_is_401(
    sandbox: Sandbox, authorization: str | None, code: str
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    reply = httpx.post(f"{sandbox.url}{LAUNCH}", json={"flowId": ORDER_STATUS}, headers=headers)
    assert reply.status_code == 401
    assert reply.json()["code"] == code


def test_expired_token_is_credentials_expired() -> None:
    with Sandbox(token_ttl=0) as own:
        token = own.issue_token()
        headers = {"Authorization": f"Bearer {token}"}
        for path in (LAUNCH, f"/api/v2/flows/{ORDER_STATUS}"):
            reply = httpx.request(
                "POST" if path == LAUNCH else "GET",
                f"{own.url}{path}",
                json={"flowId": ORDER_STATUS},
                headers=headers,
            )
            assert reply.status_code == 401
            assert reply.json()["code"] == "credentials.expired"


def test_get_execution_requires_a_token(sandbox: Sandbox) -> None:
    reply = httpx.get(f"{sandbox.url}{LAUNCH}/anything")
    assert reply.status_code == 401
    assert reply.json()["code"] == "authentication.required"


# -- rate limit -----------------------------------------------------------------------------------


def test_api_rate_limit_answers_429_with_retry_after_and_ratelimit_headers() -> None:
    with Sandbox(rate_limit_per_minute=2) as own:
        token = own.issue_token()
        with httpx.Client(
            base_url=own.url, headers={"Authorization": f"Bearer {token}"}
        ) as limited:
            first = launch(limited, {"flowId": ORDER_STATUS})
            second = launch(limited, {"flowId": ORDER_STATUS})
            third = launch(limited, {"flowId": ORDER_STATUS})
            assert (first.status_code, second.status_code, third.status_code) == (200, 200, 429)
            assert first.headers["inin-ratelimit-count"] == "1"
            assert first.headers["inin-ratelimit-allowed"] == "2"
            assert 1 <= int(first.headers["inin-ratelimit-reset"]) <= 60
            assert 1 <= int(third.headers["Retry-After"]) <= 60
            assert third.headers["inin-ratelimit-count"] == "3"
            assert third.headers["inin-ratelimit-allowed"] == "2"
            assert "inin-ratelimit-reset" in third.headers
            body = third.json()
            assert body["code"] == "too.many.requests"
            assert body["status"] == 429
            # Other tokens have their own budget; a reset clears this one.
            other = {"Authorization": f"Bearer {own.issue_token()}"}
            assert limited.post(LAUNCH, json={"flowId": ORDER_STATUS}, headers=other).is_success
            own.reset_rate_limit()
            assert launch(limited, {"flowId": ORDER_STATUS}).status_code == 200


# -- launch: body shape ---------------------------------------------------------------------------


def test_body_over_512000_bytes_is_413(client: httpx.Client) -> None:
    padding = "x" * MAX_BODY_BYTES
    reply = launch(client, {"flowId": ORDER_STATUS, "inputData": {"Flow.customerId": padding}})
    assert reply.status_code == 413
    assert reply.json()["code"] == "request.entity.too.large"
    # The connection stays usable after the refusal.
    assert launch(client, {"flowId": ORDER_STATUS}).status_code == 200


def test_body_at_the_limit_is_not_413(client: httpx.Client) -> None:
    body = json.dumps({"flowId": ORDER_STATUS, "name": ""}).encode()
    body = body[:-2] + b" " * (MAX_BODY_BYTES - len(body)) + body[-2:]
    assert len(body) == MAX_BODY_BYTES
    reply = client.post(LAUNCH, content=body, headers={"Content-Type": "application/json"})
    assert reply.status_code == 200


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_non_json_content_type_is_415(client: httpx.Client, content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    body = json.dumps({"flowId": ORDER_STATUS})
    reply = client.post(LAUNCH, content=body, headers=headers)
    assert reply.status_code == 415
    assert reply.json()["code"] == "unsupported.media.type"


def test_json_content_type_with_charset_is_accepted(client: httpx.Client) -> None:
    reply = client.post(
        LAUNCH,
        content=json.dumps({"flowId": ORDER_STATUS}),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert reply.status_code == 200


@pytest.mark.parametrize("body", [b"{flowId: 1}", b"", b"\xff\xfe", b'{"flowId": "a"'])
def test_body_that_is_not_json_is_bad_request(client: httpx.Client, body: bytes) -> None:
    reply = client.post(LAUNCH, content=body, headers={"Content-Type": "application/json"})
    assert reply.status_code == 400
    assert reply.json()["code"] == "bad.request"


@pytest.mark.parametrize("body", [[{"flowId": ORDER_STATUS}], "flowId", 42, None])
def test_json_that_is_not_an_object_is_bad_request(client: httpx.Client, body: object) -> None:
    reply = client.post(
        LAUNCH, content=json.dumps(body), headers={"Content-Type": "application/json"}
    )
    assert reply.status_code == 400
    assert reply.json()["code"] == "bad.request"
    assert "Invalid input" in reply.json()["message"]


@pytest.mark.parametrize(
    "key", ["data", "execution_context", "flow_id", "parameters", "flowID", "routingData"]
)
def test_unknown_root_key_is_bad_request_naming_the_field(client: httpx.Client, key: str) -> None:
    reply = launch(client, {"flowId": ORDER_STATUS, key: {"Flow.customerId": "c-1"}})
    assert reply.status_code == 400
    body = reply.json()
    assert body["code"] == "bad.request"
    assert body["message"] == "Invalid input"
    assert body["details"] == [{"errorCode": "UNRECOGNIZED_FIELD", "fieldName": key}]
    nested = body["errors"]
    assert len(nested) == 1
    assert nested[0]["code"] == "invalid.value"
    assert nested[0]["details"][0]["fieldName"] == key


def test_every_unknown_root_key_gets_its_own_detail(client: httpx.Client) -> None:
    reply = launch(client, {"flow_id": ORDER_STATUS, "data": {}, "execution_context": {}})
    assert reply.status_code == 400
    assert fields(reply) == ["flow_id", "data", "execution_context"]


def test_missing_flow_id_is_bad_request_on_flow_id(client: httpx.Client) -> None:
    reply = launch(client, {"inputData": {"Flow.customerId": "c-1"}})
    assert reply.status_code == 400
    assert reply.json()["code"] == "bad.request"
    assert fields(reply) == ["flowId"]


def test_unknown_flow_is_404(client: httpx.Client) -> None:
    reply = launch(client, {"flowId": MISSING})
    assert reply.status_code == 404
    assert reply.json()["code"] == "not.found"


def test_deleted_flow_is_410(client: httpx.Client) -> None:
    reply = launch(client, {"flowId": DELETED})
    assert reply.status_code == 410
    body = reply.json()
    assert body["code"] == "architect.flow.deleted"
    assert body["entityId"] == DELETED


def test_unpublished_flow_version_is_invalid_value_on_flow_version(client: httpx.Client) -> None:
    reply = launch(client, {"flowId": ORDER_STATUS, "flowVersion": "2.0"})
    assert reply.status_code == 400
    assert reply.json()["code"] == "invalid.value"
    assert fields(reply) == ["flowVersion"]
    assert launch(client, {"flowId": ORDER_STATUS, "flowVersion": "3.0"}).status_code == 200


@pytest.mark.parametrize("input_data", [[{"Flow.customerId": "c-1"}], "Flow.customerId=c-1", 7])
def test_input_data_that_is_not_an_object_is_invalid_value(
    client: httpx.Client, input_data: object
) -> None:
    reply = launch(client, {"flowId": ORDER_STATUS, "inputData": input_data})
    assert reply.status_code == 400
    assert reply.json()["code"] == "invalid.value"
    assert fields(reply) == ["inputData"]


# -- launch: input schema -------------------------------------------------------------------------


def test_input_key_without_flow_prefix_is_refused_and_named(client: httpx.Client) -> None:
    reply = launch(client, {"flowId": ORDER_STATUS, "inputData": {"customerId": "c-1"}})
    assert reply.status_code == 400
    body = reply.json()
    assert body["code"] == "invalid.value"
    assert fields(reply) == ["inputData.customerId"]
    assert body["details"][0]["errorCode"] == "UNRECOGNIZED_FIELD"
    assert "Flow.customerId" in body["errors"][0]["message"]
    assert body["messageParams"]["fields"] == "inputData.customerId"


def test_undeclared_input_key_is_refused(client: httpx.Client) -> None:
    reply = launch(client, {"flowId": ORDER_STATUS, "inputData": {"Flow.favouriteColour": "red"}})
    assert reply.status_code == 400
    assert fields(reply) == ["inputData.Flow.favouriteColour"]


@pytest.mark.parametrize(
    ("flow_id", "key", "value"),
    [
        (ORDER_STATUS, "Flow.customerId", 12345),  # archString takes strings only
        (ORDER_STATUS, "Flow.customerId", "x" * 32_001),
        (ORDER_STATUS, "Flow.orderNumber", "12a"),  # archInteger strings are digits only
        (ORDER_STATUS, "Flow.orderNumber", "12345678901234567"),  # 17 digits
        (ORDER_STATUS, "Flow.orderNumber", 1_000_000_000_000_000),
        (ORDER_STATUS, "Flow.orderNumber", 1.5),
        (ORDER_STATUS, "Flow.orderNumber", True),
        (ORDER_STATUS, "Flow.isVip", "yes"),
        (ORDER_STATUS, "Flow.requestedAt", "tomorrow"),
        (PAYMENT, "Flow.amount", "12.50"),
        (CALLBACK, "Flow.callbackAt", 1700000000),
        (SURVEY, "Flow.payload", "{}"),  # archJson is the only type taking an object
        (SURVEY, "Flow.channels", ["sms"] * 2001),
        (SURVEY, "Flow.channels", ["sms", 3]),
        (ORDER_STATUS, "Flow.customerId", {"id": "c-1"}),
    ],
)
def test_input_of_the_wrong_arch_type_is_invalid_value_on_that_key(
    client: httpx.Client, flow_id: str, key: str, value: object
) -> None:
    reply = launch(client, {"flowId": flow_id, "inputData": {key: value}})
    assert reply.status_code == 400
    body = reply.json()
    assert body["code"] == "invalid.value"
    assert fields(reply) == [f"inputData.{key}"]
    assert body["errors"][0]["messageParams"]["field"] == f"inputData.{key}"


def test_each_bad_input_key_is_reported(client: httpx.Client) -> None:
    reply = launch(
        client,
        {
            "flowId": ORDER_STATUS,
            "inputData": {"customerId": "c-1", "Flow.orderNumber": "abc", "Flow.isVip": True},
        },
    )
    assert fields(reply) == ["inputData.customerId", "inputData.Flow.orderNumber"]


@pytest.mark.parametrize(
    ("flow_id", "inputs"),
    [
        (ORDER_STATUS, {"Flow.orderNumber": "157"}),
        (ORDER_STATUS, {"Flow.orderNumber": 157, "Flow.customerId": None, "Flow.isVip": False}),
        (ORDER_STATUS, {"Flow.orderNumber": -999_999_999_999_999}),
        (ORDER_STATUS, {"Flow.requestedAt": "2025-03-14T16:00:00.000Z"}),
        (ORDER_STATUS, {"Flow.requestedAt": "2025-03-14T16:00:00+02:00"}),
        (PAYMENT, {"Flow.amount": 12.5, "Flow.currency": "EUR"}),
        (PAYMENT, {"Flow.amount": 12}),
        (SURVEY, {"Flow.payload": {"nested": [1, 2]}, "Flow.channels": ["sms", "email"]}),
        (CALLBACK, {}),  # a missing input keeps its initial value
    ],
)
def test_inputs_of_the_right_arch_type_launch(
    client: httpx.Client, flow_id: str, inputs: dict[str, object]
) -> None:
    reply = launch(client, {"flowId": flow_id, "inputData": inputs})
    assert reply.status_code == 200, reply.text


# -- launch: success and execution status ---------------------------------------------------------


def test_launch_returns_execution_with_flow_version_and_self_uri(client: httpx.Client) -> None:
    reply = launch(client, {"flowId": ORDER_STATUS, "name": "order 157"})
    assert reply.status_code == 200
    body = reply.json()
    assert body["name"] == "order 157"
    assert body["flowVersion"] == {
        "id": "3.0",
        "name": "3.0",
        "selfUri": f"/api/v2/flows/{ORDER_STATUS}/versions/3.0",
    }
    assert body["selfUri"] == f"{LAUNCH}/{body['id']}"
    assert len(body["id"]) == 50


def test_launch_without_name_is_named_after_the_flow(client: httpx.Client) -> None:
    body = launch(client, {"flowId": CALLBACK}).json()
    assert body["name"].startswith("Callback Scheduler ")


def test_execution_runs_then_completes_with_output_data(client: httpx.Client) -> None:
    launched = launch(
        client,
        {"flowId": ORDER_STATUS, "inputData": {"Flow.customerId": "c-42", "Flow.orderNumber": 7}},
    ).json()
    first = client.get(f"{LAUNCH}/{launched['id']}")
    assert first.status_code == 200
    assert first.json()["status"] == "RUNNING"
    assert "dateLaunched" in first.json()
    assert "outputData" not in first.json()
    done = wait_until_done(client, launched["id"])
    assert done["status"] == "COMPLETED"
    assert done["flowVersion"]["selfUri"] == f"/api/v2/flows/{ORDER_STATUS}/versions/3.0"
    assert done["dateCompleted"] >= done["dateLaunched"]
    output = done["outputData"]
    assert output["Flow.customerId"] == "c-42"  # an output that is also an input echoes it
    assert output["Flow.trackingUrl"] is None  # unset values come back as null
    assert isinstance(output["Flow.itemCount"], str)  # integers come back as strings
    assert output["Flow.itemCount"].isdigit()


def test_execution_of_a_failing_flow_ends_failed_with_flow_error_info() -> None:
    flaky = SandboxFlow(
        id="11111111-2222-4333-8444-555555555555",
        name="Always Fails",
        version="1.0",
        input_schema={"type": "object", "properties": {}, "additionalProperties": False},
        output_schema={"type": "object", "properties": {}},
        fail_rate=1.0,
    )
    with Sandbox(flows=[flaky], execution_seconds=0) as own:
        headers = {"Authorization": f"Bearer {own.issue_token()}"}
        with httpx.Client(base_url=own.url, headers=headers) as authed:
            launched = launch(authed, {"flowId": flaky.id}).json()
            done = authed.get(f"{LAUNCH}/{launched['id']}").json()
    assert done["status"] == "FAILED"
    assert "outputData" not in done
    error = done["flowErrorInfo"]
    assert error["code"]
    assert error["message"]
    assert error["status"] >= 400
    assert {"messageWithParams", "messageParams", "contextId", "details", "errors"} <= set(error)


def test_same_seed_gives_same_outcomes() -> None:
    coin = SandboxFlow(
        id="66666666-7777-4888-9999-000000000000",
        name="Coin Flip",
        version="1.0",
        input_schema={"type": "object", "properties": {}, "additionalProperties": False},
        output_schema={"type": "object", "properties": {}},
        fail_rate=0.5,
    )

    def outcomes() -> list[str]:
        with Sandbox(flows=[coin], execution_seconds=0, seed=7) as own:
            headers = {"Authorization": f"Bearer {own.issue_token()}"}
            with httpx.Client(base_url=own.url, headers=headers) as authed:
                ids = [launch(authed, {"flowId": coin.id}).json()["id"] for _ in range(20)]
                return [authed.get(f"{LAUNCH}/{i}").json()["status"] for i in ids]

    first = outcomes()
    assert first == outcomes()
    assert {"COMPLETED", "FAILED"} == set(first)


def test_unknown_execution_is_404(client: httpx.Client) -> None:
    reply = client.get(f"{LAUNCH}/no-such-execution")
    assert reply.status_code == 404
    assert reply.json()["code"] == "not.found"


# -- flows and versions ---------------------------------------------------------------------------


def test_get_flow_returns_published_version(client: httpx.Client) -> None:
    reply = client.get(f"/api/v2/flows/{ORDER_STATUS}")
    assert reply.status_code == 200
    body = reply.json()
    assert body["id"] == ORDER_STATUS
    assert body["name"] == "Order Status Lookup"
    assert body["type"] == "workflow"
    assert body["publishedVersion"]["selfUri"] == f"/api/v2/flows/{ORDER_STATUS}/versions/3.0"
    assert body["selfUri"] == f"/api/v2/flows/{ORDER_STATUS}"


def test_get_flow_version_returns_input_and_output_schemas(client: httpx.Client) -> None:
    reply = client.get(f"/api/v2/flows/{ORDER_STATUS}/versions/3.0")
    assert reply.status_code == 200
    body = reply.json()
    assert body["id"] == "3.0"
    assert body["inputSchema"]["additionalProperties"] is False
    assert "Flow.orderNumber" in body["inputSchema"]["properties"]
    assert "Flow.orderStatus" in body["outputSchema"]["properties"]


def test_flow_versions_list_and_latest_configuration(client: httpx.Client) -> None:
    listing = client.get(f"/api/v2/flows/{PAYMENT}/versions").json()
    assert [entity["id"] for entity in listing["entities"]] == ["7.0"]
    configuration = client.get(f"/api/v2/flows/{PAYMENT}/latestconfiguration")
    assert configuration.status_code == 200
    variables = {v["name"]: v for v in configuration.json()["variables"]}
    assert variables["Flow.amount"]["isInput"] is True


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v2/flows/{MISSING}",
        f"/api/v2/flows/{ORDER_STATUS}/versions/9.0",
        f"/api/v2/flows/{MISSING}/versions/1.0",
        f"/api/v2/flows/{MISSING}/latestconfiguration",
        "/api/v2/flows",
        "/api/v2/users/me",
        "/",
    ],
)
def test_unknown_resources_are_404(client: httpx.Client, path: str) -> None:
    reply = client.get(path)
    assert reply.status_code == 404
    assert reply.json()["code"] == "not.found"


def test_flow_id_in_the_launch_path_is_404(client: httpx.Client) -> None:
    reply = client.post(f"/api/v2/flows/{ORDER_STATUS}/executions", json={"inputData": {}})
    assert reply.status_code == 404


def test_deleted_flow_get_is_410(client: httpx.Client) -> None:
    assert client.get(f"/api/v2/flows/{DELETED}").status_code == 410


# -- every response -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", LAUNCH, {"flowId": ORDER_STATUS}, 200),
        ("POST", LAUNCH, {"data": {}}, 400),
        ("POST", LAUNCH, {"flowId": DELETED}, 410),
        ("POST", LAUNCH, {"flowId": MISSING}, 404),
        ("GET", f"/api/v2/flows/{ORDER_STATUS}", None, 200),
        ("GET", f"{LAUNCH}/missing", None, 404),
        ("GET", "/nowhere", None, 404),
        ("DELETE", f"/api/v2/flows/{ORDER_STATUS}", None, 404),
        ("POST", "/oauth/token", None, 401),
    ],
)
def test_every_response_carries_a_correlation_id_matching_the_body(
    client: httpx.Client, method: str, path: str, body: object, status: int
) -> None:
    reply = client.request(method, path, json=body)
    assert reply.status_code == status
    correlation_id = reply.headers["ININ-Correlation-Id"]
    assert len(correlation_id) == 36
    document = reply.json()
    # Platform error bodies repeat the id as contextId; success bodies and OAuth errors do not.
    platform_error = reply.status_code >= 400 and path != "/oauth/token"
    assert document.get("contextId") == (correlation_id if platform_error else None)


def test_correlation_ids_are_unique_per_response(client: httpx.Client) -> None:
    ids = {client.get("/nowhere").headers["ININ-Correlation-Id"] for _ in range(5)}
    assert len(ids) == 5


def test_error_bodies_have_the_platform_shape(client: httpx.Client) -> None:
    body = launch(client, {"flowId": ORDER_STATUS, "inputData": {"orderNumber": 1}}).json()
    assert {
        "message",
        "code",
        "status",
        "messageWithParams",
        "messageParams",
        "contextId",
        "details",
        "errors",
    } <= set(body)
    assert all(isinstance(value, str) for value in body["messageParams"].values())


# -- transport details ----------------------------------------------------------------------------


def test_chunked_request_body_is_read(client: httpx.Client) -> None:
    payload = json.dumps({"flowId": ORDER_STATUS, "inputData": {"Flow.customerId": "c-1"}})

    def chunks() -> Iterator[bytes]:
        yield payload[:20].encode()
        yield payload[20:].encode()

    reply = client.post(LAUNCH, content=chunks(), headers={"Content-Type": "application/json"})
    assert reply.status_code == 200, reply.text


def test_expect_100_continue_is_honoured(sandbox: Sandbox) -> None:
    token = sandbox.issue_token()
    payload = json.dumps({"flowId": ORDER_STATUS}).encode()
    with socket.create_connection(("127.0.0.1", sandbox.port), timeout=5) as raw:
        raw.sendall(
            (
                f"POST {LAUNCH} HTTP/1.1\r\nHost: sandbox\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
                "Expect: 100-continue\r\n\r\n"
            ).encode()
        )
        assert raw.recv(64).startswith(b"HTTP/1.1 100")
        raw.sendall(payload)
        assert raw.recv(64).startswith(b"HTTP/1.1 200")


def test_stats_count_what_was_served() -> None:
    with Sandbox() as own:
        headers = {"Authorization": f"Bearer {own.issue_token()}"}
        with httpx.Client(base_url=own.url, headers=headers) as authed:
            launch(authed, {"flowId": ORDER_STATUS})
            launch(authed, {"flowId": MISSING})
            authed.get("/nowhere")
        stats = own.stats
    assert stats["requests"] == 3
    assert stats["launch"] == 2
    assert stats["status_200"] == 1
    assert stats["status_404"] == 2


def test_stop_frees_the_port_and_closes_kept_alive_connections() -> None:
    own = Sandbox().start()
    port = own.port
    with httpx.Client(base_url=own.url, timeout=2) as kept_alive:
        assert kept_alive.get("/nowhere").status_code == 404
        own.stop()
        with pytest.raises(httpx.TransportError):
            kept_alive.get("/nowhere")
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port)):
        pass
    with socket.socket() as rebind:
        rebind.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        rebind.bind(("127.0.0.1", port))


def test_url_before_start_is_an_error() -> None:
    with pytest.raises(RuntimeError):
        _ = Sandbox().url


def test_run_forever_serves_until_stopped() -> None:
    stop = threading.Event()
    started: list[Sandbox] = []
    ready = threading.Event()

    def on_ready(running: Sandbox) -> None:
        started.append(running)
        ready.set()

    worker = threading.Thread(
        target=run_forever, args=("127.0.0.1", 0), kwargs={"ready": on_ready, "stop": stop}
    )
    worker.start()
    try:
        assert ready.wait(5)
        assert httpx.get(f"{started[0].url}/nowhere").status_code == 404
    finally:
        stop.set()
        worker.join(5)
    assert not worker.is_alive()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{started[0].port}/nowhere")


# -- the built-in flows ---------------------------------------------------------------------------


def test_default_flows_are_stable_and_include_one_deleted_flow() -> None:
    flows = default_flows()
    by_id = {flow.id: flow for flow in flows}
    assert len(by_id) == len(flows) >= 5
    assert by_id[ORDER_STATUS].name == "Order Status Lookup"
    assert by_id[ORDER_STATUS].version == "3.0"
    assert [flow.id for flow in flows if flow.deleted] == [DELETED]


def test_default_flow_schemas_are_closed_json_schema_over_flow_variables() -> None:
    for flow in default_flows():
        for schema in (flow.input_schema, flow.output_schema):
            jsonschema.Draft4Validator.check_schema(schema)
            assert schema["additionalProperties"] is False
            assert all(name.startswith("Flow.") for name in schema["properties"])


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("Flow.orderNumber", "157"),
        ("Flow.orderNumber", "15a"),
        ("Flow.orderNumber", 157),
        ("Flow.orderNumber", 10**16),
        ("Flow.orderNumber", None),
        ("Flow.isVip", 1),
        ("Flow.customerId", 5),
        ("customerId", "c-1"),
    ],
)
def test_sandbox_input_check_agrees_with_a_json_schema_validator(
    client: httpx.Client, key: str, value: object
) -> None:
    schema = {flow.id: flow for flow in default_flows()}[ORDER_STATUS].input_schema
    expected_valid = jsonschema.Draft4Validator(schema).is_valid({key: value})
    reply = launch(client, {"flowId": ORDER_STATUS, "inputData": {key: value}})
    assert (reply.status_code == 200) is expected_valid


# -- the same model in-process: Sandbox.transport() -----------------------------------------------

ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
ACCESS_TOKEN = re.compile(r'"access_token":"[\w-]+\.[\w-]+\.[\w-]+"')
#: Headers that change from one reply to the next whatever the path (checked separately below).
PER_REPLY = {"date", "inin-correlation-id", "connection"}
TIMING = {"retry-after", "inin-ratelimit-reset"}


def parity_calls() -> list[tuple[str, str, dict[str, str], bytes]]:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    as_json = {"Content-Type": "application/json"}

    def body(document: object) -> bytes:
        return json.dumps(document).encode()

    return [
        (
            "POST",
            "/oauth/token",
            {**form, **basic("sandbox-client", "sandbox-secret")},
            b"grant_type=client_credentials",
        ),
        (
            "POST",
            "/oauth/token",
            {**form, **basic("sandbox-client", "nope")},
            b"grant_type=client_credentials",
        ),
        ("POST", LAUNCH, as_json, body({"flowId": ORDER_STATUS, "name": "first"})),
        ("GET", f"{LAUNCH}/EXECUTION", {}, b""),
        ("POST", LAUNCH, as_json, body({"flow_id": ORDER_STATUS, "data": {}})),
        (
            "POST",
            LAUNCH,
            as_json,
            body({"flowId": ORDER_STATUS, "inputData": {"customerId": "c", "Flow.isVip": "y"}}),
        ),
        ("POST", LAUNCH, {"Content-Type": "text/plain"}, body({"flowId": ORDER_STATUS})),
        ("POST", LAUNCH, as_json, b"{" + b" " * MAX_BODY_BYTES + b"}"),
        ("POST", LAUNCH, {**as_json, "Authorization": "Bearer unknown"}, body({})),
        ("GET", f"/api/v2/flows/{PAYMENT}/latestconfiguration", {}, b""),
        ("GET", f"/api/v2/flows/{DELETED}", {}, b""),
        ("GET", f"{LAUNCH}/no-such-execution", {}, b""),
        ("DELETE", "/nowhere?x=1", {}, b""),
        ("GET", f"/api/v2/flows/{ORDER_STATUS}/versions/3.0", {}, b""),
    ]


def comparable(status: int, headers: list[tuple[str, str]], body: bytes) -> tuple[Any, ...]:
    """What must match between the two paths, with what differs per reply checked and taken out."""
    named = {name.lower(): value for name, value in headers}
    correlation_id = named["inin-correlation-id"]
    assert len(correlation_id) == 36
    assert "date" in named
    if "retry-after" in named:
        assert named["retry-after"] == named["inin-ratelimit-reset"]
    for timing in TIMING & set(named):
        assert 1 <= int(named[timing]) <= 60
    text = ISO_TIME.sub("<time>", body.decode().replace(correlation_id, "<correlation-id>"))
    text = ACCESS_TOKEN.sub('"access_token":"<jwt>"', text)  # new and random on every grant
    kept = sorted((k, v) for k, v in named.items() if k not in PER_REPLY | TIMING)
    return status, kept, text


def test_transport_answers_exactly_as_the_loopback_server() -> None:
    options: dict[str, Any] = {"seed": 5, "execution_seconds": 0, "rate_limit_per_minute": 9}
    with Sandbox(**options) as served:
        in_process = Sandbox(**options)
        results = []
        for sandbox, client in (
            (served, httpx.Client(base_url=served.url)),
            (in_process, httpx.Client(transport=in_process.transport(), base_url="http://sandbox")),
        ):
            token = {"Authorization": f"Bearer {sandbox.issue_token()}"}
            seen = []
            execution = ""
            with client:
                for method, path, headers, content in parity_calls():
                    reply = client.request(
                        method,
                        path.replace("EXECUTION", execution),
                        headers={**token, **headers},
                        content=content,
                    )
                    if path == LAUNCH and reply.status_code == 200:
                        execution = reply.json()["id"]
                    seen.append(
                        comparable(reply.status_code, reply.headers.multi_items(), reply.content)
                    )
            results.append((seen, sandbox.stats))
    (loopback, loopback_stats), (transport, transport_stats) = results
    assert [status for status, _, _ in transport] == [
        200,
        401,
        200,
        200,
        400,
        400,
        415,
        413,
        401,
        200,
        410,
        404,
        404,
        429,
    ]
    assert transport == loopback
    assert transport_stats == loopback_stats
    assert transport_stats["status_429"] == 1


def test_transport_serves_async_clients_from_the_same_state() -> None:
    async def run(sandbox: Sandbox, token: str) -> tuple[int, str]:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(
            transport=sandbox.transport(), base_url="http://sandbox", headers=headers
        ) as client:
            launched = await client.post(LAUNCH, json={"flowId": ORDER_STATUS})
            done = await client.get(f"{LAUNCH}/{launched.json()['id']}")
            return launched.status_code, done.json()["status"]

    sandbox = Sandbox(execution_seconds=0)
    # A token fetched over loopback is good in-process: one model behind both.
    with sandbox:
        token = httpx.post(
            f"{sandbox.url}/oauth/token",
            data={"grant_type": "client_credentials"},
            headers=basic("sandbox-client", "sandbox-secret"),
        ).json()["access_token"]
    assert asyncio.run(run(sandbox, token)) in {(200, "COMPLETED"), (200, "FAILED")}
    assert sandbox.stats["token"] == 1
    assert sandbox.stats["launch"] == 1
    assert sandbox.stats["get_execution"] == 1


def test_a_refusal_inside_an_api_route_still_carries_the_rate_limit_headers() -> None:
    sandbox = Sandbox(rate_limit_per_minute=10)
    headers = {"Authorization": f"Bearer {sandbox.issue_token()}"}
    with httpx.Client(transport=sandbox.transport(), base_url="http://sandbox") as client:
        missing = client.get(f"{LAUNCH}/no-such-execution", headers=headers)
        bad = client.post(LAUNCH, json={"flowId": MISSING}, headers=headers)
    assert (missing.status_code, bad.status_code) == (404, 404)
    assert missing.headers["inin-ratelimit-count"] == "1"
    assert bad.headers["inin-ratelimit-count"] == "2"
    assert bad.headers["inin-ratelimit-allowed"] == "10"


# -- input checks: the messages people read ------------------------------------------------------


@pytest.fixture(scope="module")
def in_process() -> Iterator[httpx.Client]:
    sandbox = Sandbox(seed=2)
    headers = {"Authorization": f"Bearer {sandbox.issue_token()}"}
    with httpx.Client(
        transport=sandbox.transport(), base_url="http://sandbox", headers=headers
    ) as client:
        yield client


@pytest.mark.parametrize(
    ("flow_id", "key", "value", "message"),
    [
        (ORDER_STATUS, "Flow.customerId", 12345, "expected string, got integer"),
        (ORDER_STATUS, "Flow.customerId", "x" * 32_001, "string longer than 32000 characters"),
        (ORDER_STATUS, "Flow.orderNumber", "12a", "string does not match ^[0-9]{1,16}$"),
        (ORDER_STATUS, "Flow.orderNumber", 10**15, "number above 999999999999999"),
        (ORDER_STATUS, "Flow.orderNumber", -(10**15), "number below -999999999999999"),
        (ORDER_STATUS, "Flow.orderNumber", 1.5, "expected integer or string, got number"),
        (ORDER_STATUS, "Flow.isVip", "yes", "expected boolean, got string"),
        (
            ORDER_STATUS,
            "Flow.requestedAt",
            "tomorrow",
            "expected an ISO-8601 date-time such as 2025-03-14T16:00:00.000Z",
        ),
        # The list's own fault first, then its first bad item.
        (SURVEY, "Flow.channels", ["sms"] * 2000 + [3], "more than 2000 items"),
        (SURVEY, "Flow.channels", ["sms", 3, 4], "item 1: expected string, got integer"),
    ],
)
def test_a_refused_input_value_is_explained_in_one_clause(
    in_process: httpx.Client, flow_id: str, key: str, value: object, message: str
) -> None:
    reply = launch(in_process, {"flowId": flow_id, "inputData": {key: value}})
    assert reply.status_code == 400
    nested = reply.json()["errors"]
    assert [error["message"] for error in nested] == [f"{key}: {message}"]
    assert reply.json()["message"].endswith(f": {key}: {message}.")


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (
            "customerId",
            "customerId is not an input of this flow version; "
            "flow variables are named Flow.customerId",
        ),
        ("Flow.favouriteColour", "Flow.favouriteColour is not an input of this flow version"),
    ],
)
def test_an_undeclared_input_key_is_explained(
    in_process: httpx.Client, key: str, message: str
) -> None:
    reply = launch(in_process, {"flowId": ORDER_STATUS, "inputData": {key: "c-1"}})
    assert reply.status_code == 400
    assert reply.json()["errors"][0]["message"] == message
    assert reply.json()["details"] == [
        {"errorCode": "UNRECOGNIZED_FIELD", "fieldName": f"inputData.{key}"}
    ]


def test_a_hand_built_flow_gets_every_json_schema_keyword_checked_but_not_required() -> None:
    colours = SandboxFlow(
        id="33333333-4444-4555-8666-777777777777",
        name="Colours",
        version="1.0",
        input_schema={
            "$schema": "http://json-schema.org/draft-04/schema#",
            "type": "object",
            "properties": {"Flow.colour": {"type": "string", "enum": ["red", "green"]}},
            "required": ["Flow.colour"],
            "additionalProperties": False,
        },
        output_schema={"type": "object", "properties": {}},
    )
    sandbox = Sandbox(flows=[colours])
    headers = {"Authorization": f"Bearer {sandbox.issue_token()}"}
    with httpx.Client(
        transport=sandbox.transport(), base_url="http://s", headers=headers
    ) as client:
        purple = launch(client, {"flowId": colours.id, "inputData": {"Flow.colour": "purple"}})
        green = launch(client, {"flowId": colours.id, "inputData": {"Flow.colour": "green"}})
        # A missing input keeps its initial value on the platform, "required" or not.
        absent = launch(client, {"flowId": colours.id, "inputData": {}})
    assert purple.status_code == 400
    assert purple.json()["errors"][0]["message"] == (
        "Flow.colour: 'purple' is not one of ['red', 'green']"
    )
    assert (green.status_code, absent.status_code) == (200, 200)


def test_a_failure_of_the_sandbox_itself_is_a_500_in_the_platform_shape() -> None:
    # A hand-built flow whose schema holds a broken regular expression: the check itself fails.
    broken = SandboxFlow(
        id="88888888-9999-4aaa-8bbb-cccccccccccc",
        name="Broken",
        version="1.0",
        input_schema={"type": "object", "properties": {"Flow.code": {"pattern": "("}}},
        output_schema={"type": "object", "properties": {}},
    )
    with Sandbox(flows=[broken]) as own:
        headers = {"Authorization": f"Bearer {own.issue_token()}"}
        with httpx.Client(base_url=own.url, headers=headers) as authed:
            failed = launch(authed, {"flowId": broken.id, "inputData": {"Flow.code": "x"}})
            after = launch(authed, {"flowId": broken.id})
    assert failed.status_code == 500
    assert failed.headers["Connection"] == "close"
    body = failed.json()
    assert (body["code"], body["message"]) == ("internal.server.error", "The sandbox failed.")
    assert body["contextId"] == failed.headers["ININ-Correlation-Id"]
    assert after.status_code == 200


def test_the_api_model_answers_without_any_transport() -> None:
    api = Sandbox().api
    reply = api.handle("GET", "/api/v2/flows/executions/x?y=1", {"AUTHORIZATION": "Bearer no"}, b"")
    assert reply.status == 401
    assert reply.header("content-type") == "application/json"
    assert json.loads(reply.body)["code"] == "bad.credentials"
    assert api.stats == {"get_execution": 1, "requests": 1, "status_401": 1}
