"""The WARNING of a failed launch: one record whose message ends with the payload hints."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from flowscope import FlowMetrics, FlowScopeTransport
from flowscope.sandbox import Sandbox

from .conftest import LogCapture, Spans

LAUNCH = "/api/v2/flows/executions"
ORDER_STATUS = "9b1f3c2e-6a4d-4e8b-9f21-3c7d5a0e8b14"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(seed=2) as running:
        yield running


@pytest.fixture
def client(sandbox: Sandbox, spans: Spans, metrics: FlowMetrics) -> Iterator[httpx.Client]:
    transport = FlowScopeTransport(tracer_provider=spans.provider, metrics=metrics)
    headers = {"Authorization": f"Bearer {sandbox.issue_token()}"}
    with httpx.Client(base_url=sandbox.url, transport=transport, headers=headers) as authed:
        yield authed


def _warning(logs: LogCapture) -> logging.LogRecord:
    (record,) = [r for r in logs.records if r.levelname == "WARNING"]
    return record


def test_the_warning_ends_with_each_hint_on_its_own_indented_line(
    client: httpx.Client, flowscope_logs: LogCapture
) -> None:
    body = {"flowId": ORDER_STATUS, "data": {"customerId": "42"}, "execution_context": {}}
    assert client.post(LAUNCH, json=body).status_code == 400
    record = _warning(flowscope_logs)
    first, *hints = record.getMessage().splitlines()
    assert first.startswith(
        f"flow call failed: POST /api/v2/flows/executions flow={ORDER_STATUS} -> 400 "
        "bad.request: Invalid input [fields: "
    )
    second = record.flowscope["hints"][1]["message"]  # type: ignore[attr-defined]
    assert second.startswith(
        "the platform rejected 'execution_context' (the error's fieldName); "
        "'execution_context' is not "
    )
    assert hints == [
        "    hint unknown-root-key [data]: the platform rejected 'data' (the error's fieldName); "
        "'data' is not a launch field: flow inputs go under "
        """'inputData', e.g. {"inputData": {"Flow.customerId": "42"}}""",
        f"    hint unknown-root-key [execution_context]: {second}",
    ]


def test_the_structured_extra_keeps_the_hints_as_data(
    client: httpx.Client, flowscope_logs: LogCapture
) -> None:
    client.post(LAUNCH, json={"flowId": ORDER_STATUS, "data": {}})
    extra: dict[str, Any] = _warning(flowscope_logs).flowscope  # type: ignore[attr-defined]
    assert extra["hints"] == [
        {
            "code": "unknown-root-key",
            "field": "data",
            "message": "the platform rejected 'data' (the error's fieldName); "
            "'data' is not a launch field: flow inputs go under 'inputData', "
            """e.g. {"inputData": {"Flow.customerId": "42"}}""",
        }
    ]
    assert extra["error"]["fields"] == ["data"]
    assert "hint" not in json.dumps(extra["error"])


@pytest.mark.parametrize("brk", ["\n", "\r\n", "\u2028", "\x1e", "\x85", "\x00", "\x1b"])
def test_a_payload_key_with_a_line_break_cannot_forge_a_log_line(
    client: httpx.Client, flowscope_logs: LogCapture, brk: str
) -> None:
    key = f"x{brk}WARNING flow call succeeded: all good"
    assert client.post(LAUNCH, json={"flowId": ORDER_STATUS, key: 1}).status_code == 400
    record = _warning(flowscope_logs)
    lines = record.getMessage().splitlines()
    assert len(lines) == 2, lines  # the failure and its one hint
    assert lines[1].startswith(
        "    hint unknown-root-key [x WARNING flow call succeeded: all good]: "
        "the platform rejected 'x WARNING flow call succeeded: all good' (the error's fieldName)"
    )
    # The structured record keeps the key as sent.
    assert record.flowscope["hints"][0]["field"] == key  # type: ignore[attr-defined]


def test_many_hints_are_shown_up_to_ten_and_counted(
    client: httpx.Client, flowscope_logs: LogCapture
) -> None:
    body: dict[str, Any] = {"flowId": ORDER_STATUS} | {f"extra{n:02}": n for n in range(14)}
    assert client.post(LAUNCH, json=body).status_code == 400
    record = _warning(flowscope_logs)
    first, *hints = record.getMessage().splitlines()
    assert first.endswith(")")  # the failure line itself, ending with the trace id
    assert len(record.flowscope["hints"]) == 14  # type: ignore[attr-defined]
    assert len(hints) == 11
    assert [h.split(" [")[0] for h in hints[:10]] == ["    hint unknown-root-key"] * 10
    assert hints[10] == "    ... and 4 more hints in the record"


def test_a_failure_without_hints_is_one_line(
    client: httpx.Client, flowscope_logs: LogCapture
) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    response = client.post(LAUNCH, json={"flowId": missing, "inputData": {}})
    assert response.status_code == 404
    lines = _warning(flowscope_logs).getMessage().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"flow call failed: POST /api/v2/flows/executions flow={missing}")
