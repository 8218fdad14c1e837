"""Each bad input a new user met: one line, the right exit code, no traceback.

Usage errors exit 2, a failed call (or a port that cannot be bound) exits 1, and a command that
did its job but could not export its traces exits 0 with one warning line. The same bad
``FLOWSCOPE_*`` values go to ``FlowScopeConfig.from_env()`` and to the CLI, which reads them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowscope import FlowScopeConfig
from flowscope.sandbox import Sandbox

from .servers import Reply, ScriptedServer

ROOT = Path(__file__).resolve().parents[1]
ORDER_STATUS = "9b1f3c2e-6a4d-4e8b-9f21-3c7d5a0e8b14"
CREDENTIALS = {"GENESYS_CLIENT_ID": "sandbox-client", "GENESYS_CLIENT_SECRET": "sandbox-secret"}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(seed=5, execution_seconds=0.1) as running:
        yield running


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("bad-input")
    written = {
        "PAYLOAD": {"flowId": ORDER_STATUS, "inputData": {"Flow.customerId": "C-1"}},
        # GET /api/v2/flows/{id}: a flow document, without the version's inputSchema.
        "FLOW_DOC": {
            "id": ORDER_STATUS,
            "name": "Order Status Lookup",
            "publishedVersion": {"id": "3.0"},
            "selfUri": f"/api/v2/flows/{ORDER_STATUS}",
        },
    }
    paths = {}
    for name, document in written.items():
        path = folder / f"{name.lower()}.json"
        path.write_text(json.dumps(document))
        paths[name] = str(path)
    not_json = folder / "not-json.json"
    not_json.write_text('{"flowId": ')
    paths["NOT_JSON"] = str(not_json)
    return paths


# (argv, environment, exit code, a fragment of the one line on stderr)
CLI_CASES: dict[str, tuple[list[str], dict[str, str], int, str]] = {
    "sandbox_port_out_of_range": (
        ["sandbox", "--port", "99999"],
        {},
        2,
        "argument --port: a port is between 0 and 65535, got 99999",
    ),
    "sandbox_address_not_here": (
        ["sandbox", "--host", "10.255.255.1", "--port", "0"],
        {},
        1,
        "cannot listen on 10.255.255.1:0: ",
    ),
    "check_schema_is_a_flow_without_input_schema": (
        ["check", "PAYLOAD", "--schema", "FLOW_DOC"],
        {},
        2,
        "holds a flow without an inputSchema",
    ),
    "check_schema_is_the_payload": (
        ["check", "PAYLOAD", "--schema", "PAYLOAD"],
        {},
        2,
        "holds a launch payload",
    ),
    "check_payload_not_json": (["check", "NOT_JSON"], {}, 2, "is not valid JSON"),
    "check_stdin_not_json": (["check", "-"], {}, 2, "the payload on stdin: "),
    "launch_bad_region_variable": (
        ["launch", "--flow-id", ORDER_STATUS],
        {**CREDENTIALS, "GENESYS_REGION": "bogus"},
        2,
        "GENESYS_REGION: unknown region 'bogus'",
    ),
    "launch_api_base_with_api_path": (
        ["launch", "--flow-id", ORDER_STATUS, "--api-base", "SANDBOX/api/v2"],
        CREDENTIALS,
        2,
        "give the base URL without the API path, e.g. http://127.0.0.1:",
    ),
    "launch_api_base_where_nothing_answers": (
        ["launch", "--flow-id", ORDER_STATUS, "--api-base", "SANDBOX/genesys"],
        CREDENTIALS,
        1,
        "failed: 404, nothing answers there: check --api-base",
    ),
    "launch_bad_input_pair": (
        ["launch", "--flow-id", ORDER_STATUS, "--api-base", "SANDBOX", "--input", "oops"],
        CREDENTIALS,
        2,
        "argument --input: expected KEY=VALUE",
    ),
    "launch_otlp_not_a_url": (
        ["launch", "--flow-id", ORDER_STATUS, "--api-base", "SANDBOX", "--otlp", "localhost:4318"],
        CREDENTIALS,
        2,
        "--otlp 'localhost:4318': expected a URL such as http://localhost:4318",
    ),
    "demo_rate_zero": (
        ["demo", "--rate", "0"],
        {},
        2,
        "--rate must be above 0 and at most 200 calls per second, got 0",
    ),
}

# (variable, value, a fragment of the error): each must fail in from_env(), naming the variable.
ENV_CASES: dict[str, tuple[str, str, str]] = {
    "regex": ("FLOWSCOPE_REDACT_PATTERNS", "(unclosed", "is not a valid regular expression"),
    "regex_in_list": (
        "FLOWSCOPE_REDACT_PATTERNS",
        '["\\\\d{4}", "[a-"]',
        "'[a-' is not a valid regular expression",
    ),
    "pattern_list_not_json": ("FLOWSCOPE_REDACT_PATTERNS", '["a"', "is not a valid JSON list"),
    "pattern_list_of_numbers": ("FLOWSCOPE_REDACT_PATTERNS", "[1, 2]", "JSON list of strings"),
    "integer": ("FLOWSCOPE_CAPTURE_LIMIT_BYTES", "64k", "must be an integer, got '64k'"),
    "negative_integer": ("FLOWSCOPE_CAPTURE_LIMIT_BYTES", "-1", "non-negative integer"),
    "boolean": ("FLOWSCOPE_HINTS", "maybe", "must be true or false"),
    "boolean_log_failures": ("FLOWSCOPE_LOG_FAILURES", "nope", "must be true or false"),
    "json_names": ("FLOWSCOPE_FLOW_NAMES", '{"a": ', "is not valid JSON"),
    "json_names_not_object": ("FLOWSCOPE_FLOW_NAMES", "{}x", "is not valid JSON"),
}


def run_cli(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flowscope.cli", *argv],
        capture_output=True,
        text=True,
        input="not json",
        timeout=60,
        env={**os.environ, "GENESYS_REGION": "", **env},
    )


def assert_one_line(result: subprocess.CompletedProcess[str], status: int, fragment: str) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0], lines[0]
    assert result.returncode == status, result.stderr
    return lines[0]


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_each_bad_cli_input_is_one_line_with_its_exit_code(
    case: str, sandbox: Sandbox, files: dict[str, str]
) -> None:
    argv, env, status, fragment = CLI_CASES[case]
    argv = [files.get(a, a.replace("SANDBOX", sandbox.url)) for a in argv]
    result = run_cli(argv, env)
    line = assert_one_line(result, status, fragment)
    assert line.startswith("flowscope")
    if status == 2:
        assert result.stdout == ""


@pytest.mark.parametrize("case", list(ENV_CASES))
def test_each_bad_variable_fails_in_from_env_naming_it(case: str) -> None:
    name, value, fragment = ENV_CASES[case]
    with pytest.raises(ValueError) as info:
        FlowScopeConfig.from_env({name: value})
    message = str(info.value)
    assert message.startswith(name), message
    assert fragment in message
    assert "\n" not in message


@pytest.mark.parametrize("case", list(ENV_CASES))
def test_each_bad_variable_is_one_line_from_the_cli(case: str, sandbox: Sandbox) -> None:
    name, value, fragment = ENV_CASES[case]
    argv = ["launch", "--flow-id", ORDER_STATUS, "--api-base", sandbox.url]
    result = run_cli(argv, {**CREDENTIALS, name: value})
    line = assert_one_line(result, 2, fragment)
    assert line.startswith(f"flowscope: error: {name}")
    assert result.stdout == ""


def test_an_unreachable_collector_costs_one_warning_line(sandbox: Sandbox) -> None:
    port = closed_port()
    argv = ["launch", "--flow-id", ORDER_STATUS, "--api-base", sandbox.url]
    argv += ["--input", "Flow.customerId=C-1", "--otlp", f"http://127.0.0.1:{port}"]
    result = run_cli(argv, CREDENTIALS)
    assert_one_line(
        result,
        0,
        f"flowscope: warning: a batch of spans could not be exported to "
        f"http://127.0.0.1:{port}/v1/traces: ",
    )
    assert "launched: execution id" in result.stdout


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--inputs", "{bad"], "unrecognized arguments: --inputs {bad"),
        (["--input", "oops"], "argument --input: expected KEY=VALUE"),
    ],
    ids=["old_inputs_option", "input_without_equals"],
)
def test_a_bad_example_argument_is_one_line(argv: list[str], fragment: str) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "dropin_sync.py"), *argv],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert_one_line(result, 2, fragment)


def test_a_failing_collector_is_given_about_a_second_not_ten(
    sandbox: Sandbox, server: ScriptedServer
) -> None:
    """The OTLP exporter retries a 503 with backoff (1 s, 2 s, 4 s ...) within its timeout: four
    attempts in its default 10 s, one or two in the commands' one second."""
    server.replies["/v1/traces"] = Reply(503, [("Content-Type", "text/plain")], b"unavailable")
    argv = ["launch", "--flow-id", ORDER_STATUS, "--api-base", sandbox.url, "--otlp", server.url]
    result = run_cli([*argv, "--input", "Flow.customerId=C-1"], CREDENTIALS)
    assert_one_line(
        result,
        0,
        f"a batch of spans could not be exported to {server.url}/v1/traces: "
        "the collector answered HTTP 503",
    )
    assert [path for _, path, _, _ in server.seen] in (["/v1/traces"], ["/v1/traces"] * 2)
