"""Every script in examples/ runs to completion against the sandbox and shows what it promises."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowscope.sandbox import Sandbox

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ORDER_STATUS = "9b1f3c2e-6a4d-4e8b-9f21-3c7d5a0e8b14"
SECRET = "examples-test-secret-41d8"


def run_example(
    name: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=EXAMPLES.parent,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result


def test_dropin_sync_shows_the_failed_launch_in_span_log_and_metrics() -> None:
    out = run_example("dropin_sync.py")
    assert "good launch: 200" in out.stdout
    assert "classic mistake: 400 bad.request" in out.stdout
    assert "error=bad.request fields=['data']" in out.stdout
    assert "hint unknown-root-key" in out.stdout
    assert re.search(r'flowscope_requests_total\{flow="Order Status Lookup".*"400"', out.stdout)
    # The flowscope logger's WARNING carries the correlation and trace ids.
    assert re.search(
        r"WARNING flowscope: .*correlation id [0-9a-f-]{36}, trace id [0-9a-f]{32}", out.stderr
    )


def test_quickstart_prints_the_warning_with_its_hint_and_every_span() -> None:
    out = run_example("quickstart.py")
    logged = [line for line in out.stderr.splitlines() if line.startswith(("WARNING", "    "))]
    warning, hint = logged
    assert warning.startswith(
        "WARNING:flowscope:flow call failed: POST /api/v2/flows/executions "
        "flow=9b1f3c2e-6a4d-4e8b-9f21-3c7d5a0e8b14 -> 400 bad.request: Invalid input "
        "[fields: data] (correlation id "
    )
    assert hint == (
        "    hint unknown-root-key [data]: the platform rejected 'data' (the error's fieldName); "
        "'data' is not a launch field: flow inputs go under "
        """'inputData', e.g. {"inputData": {"Flow.customerId": "42"}}"""
    )
    assert "\n-> COMPLETED, outputData {'Flow.orderStatus': " in out.stderr
    spans, decoder, at = [], json.JSONDecoder(), 0
    while out.stdout[at:].strip():
        at += len(out.stdout[at:]) - len(out.stdout[at:].lstrip())
        span, at = decoder.raw_decode(out.stdout, at)
        spans.append(span)
    operations = [span["attributes"]["flow.operation"] for span in spans]
    polls = len(operations) - 2
    assert polls >= 1
    assert operations == ["launch", "launch"] + ["get_execution"] * polls
    bad, good = spans[0], spans[1]
    assert bad["attributes"]["flow.error.fields"] == ["data"]
    hints = [e["attributes"]["hint.code"] for e in bad["events"] if e["name"] == "flow.hint"]
    assert hints == ["unknown-root-key"]
    assert good["attributes"]["http.response.status_code"] == 200
    assert good["status"]["status_code"] == "UNSET"
    # The WARNING names the failed span's trace.
    assert f"trace id {bad['context']['trace_id'].removeprefix('0x')})" in out.stderr


def test_async_client_launches_and_polls_every_flow() -> None:
    out = run_example("async_client.py").stdout
    assert out.count(": COMPLETED") + out.count(": FAILED") == 5, out
    assert "Legacy IVR Survey: launch failed: 410 architect.flow.deleted" in out
    assert 'operation="get_execution"' in out


def test_existing_client_keeps_its_mounts_and_hooks_and_can_be_uninstrumented() -> None:
    out = run_example("existing_client_with_mounts.py").stdout
    assert "instrumented: launches 200 and 400, flowscope counted 2" in out
    assert "uninstrumented: launch 200, flowscope counted 0" in out
    assert "the mounted transport carried 4 requests" in out
    assert "the client's own hook still saw every request: 4 requests" in out


def test_token_refresh_renews_the_token_before_it_expires() -> None:
    out = run_example("token_refresh.py").stdout
    match = re.search(r"(\d+) token requests, 5 launches, 0 answered 401", out)
    assert match, out
    assert int(match.group(1)) >= 2
    assert out.count(": 200,") == 5


def test_web_app_launches_on_request_and_serves_metrics() -> None:
    out = run_example("web_app.py").stdout
    assert '-> 200 {"executionId": ' in out
    assert '-> 400 {"error": "invalid.value"' in out
    assert '"code": "input-key-prefix"' in out
    assert re.search(r'flowscope_requests_total\{flow="Order Status Lookup".*"400"\} 1\.0', out)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(client_secret=SECRET, seed=4) as running:
        yield running


@pytest.mark.parametrize("script", ["dropin_sync.py", "existing_client_with_mounts.py"])
def test_examples_run_against_an_api_base_with_env_credentials(
    sandbox: Sandbox, script: str
) -> None:
    launches_before = sandbox.stats.get("launch", 0)
    out = run_example(
        script,
        "--api-base",
        sandbox.url,
        "--flow-id",
        ORDER_STATUS,
        "--input",
        "Flow.customerId=C-7",
        env={"GENESYS_CLIENT_ID": sandbox.client_id, "GENESYS_CLIENT_SECRET": SECRET},
    )
    assert "started a sandbox" not in out.stdout
    assert sandbox.stats["launch"] - launches_before >= 2
    assert SECRET not in out.stdout + out.stderr
