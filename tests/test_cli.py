"""The ``flowscope`` command line: demo, check, launch, sandbox, and what bad input looks like."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowscope.cli import main
from flowscope.sandbox import Sandbox, default_flows

from .otlp_receiver import OTLPReceiver, span_attributes

ORDER_STATUS = "9b1f3c2e-6a4d-4e8b-9f21-3c7d5a0e8b14"
CALLBACK = "2f6e8a41-0c5b-4d7e-8a3f-91b2c4d6e7f8"
SECRET = "cli-test-secret-7f3a9c"
CORRELATION = re.compile(r"correlation id:\s+[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-")
SCRAPED_FLOWS = ("Order Status Lookup", "Callback Scheduler", "Payment Reminder")
TRACE = re.compile(r"trace id:\s+[0-9a-f]{32}\b")


def cli(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flowscope.cli", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- demo -----------------------------------------------------------------------------------------


@dataclass
class DemoRun:
    returncode: int
    stdout: str
    stderr: str
    scraped_while_running: str
    receiver: OTLPReceiver


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoRun]:
    """One short demo run, scraped while it runs and exporting to a loopback OTLP receiver."""
    port = free_port()
    with OTLPReceiver() as receiver:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "flowscope.cli",
                "demo",
                "--duration",
                "6",
                "--rate",
                "40",
                "--seed",
                "3",
                "--metrics-port",
                str(port),
                "--otlp",
                receiver.endpoint.removesuffix("/v1/traces"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        scraped = ""
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and process.poll() is None:
                try:
                    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
                except httpx.HTTPError:
                    text = ""
                if all(f'flowscope_requests_total{{flow="{f}"' in text for f in SCRAPED_FLOWS) and (
                    'operation="launch"' in text
                ):
                    if process.poll() is None:
                        scraped = text
                    break
                time.sleep(0.2)
            stdout, stderr = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        yield DemoRun(process.returncode, stdout, stderr, scraped, receiver)


def _flow_rows(stdout: str) -> dict[str, tuple[int, int, str]]:
    """``flow -> (launches, 400s, printed 400 rate)`` from the report table."""
    rows: dict[str, tuple[int, int, str]] = {}
    table = stdout.split("Launches per flow", 1)[1].split("Top error codes", 1)[0]
    for line in table.splitlines():
        match = re.match(r"\s+(.+?)\s+(\d+)\s+(\d+)\s+(\d+)\s+([\d.]+%)", line)
        if match:
            rows[match.group(1)] = (int(match.group(2)), int(match.group(4)), match.group(5))
    return rows


def test_demo_exits_zero_without_a_traceback(demo: DemoRun) -> None:
    assert demo.returncode == 0, demo.stderr
    assert "Traceback" not in demo.stderr


def test_demo_metrics_are_scraped_while_it_runs_with_flow_names(demo: DemoRun) -> None:
    assert demo.scraped_while_running, "no /metrics answer with flow names while the demo ran"
    for flow in SCRAPED_FLOWS:
        assert f'flowscope_requests_total{{flow="{flow}"' in demo.scraped_while_running
    assert 'operation="launch"' in demo.scraped_while_running


def _launches_seen_on_the_wire(demo: DemoRun) -> dict[str, tuple[int, int, str]]:
    """``flow -> (launches, 400s, their share)`` counted from the spans the receiver got, one
    per call the demo made, with the status code the sandbox answered."""
    counts: dict[str, list[int]] = {}
    for span in demo.receiver.spans():
        attributes = span_attributes(span)
        if attributes.get("flow.operation") != "launch":
            continue
        row = counts.setdefault(attributes.get("flow.name") or attributes["flow.id"], [0, 0])
        row[0] += 1
        row[1] += attributes.get("http.response.status_code") == 400
    return {flow: (n, bad, f"{bad / n:.1%}") for flow, (n, bad) in counts.items()}


def test_demo_report_names_every_flow_with_its_400_rate(demo: DemoRun) -> None:
    rows = _flow_rows(demo.stdout)
    assert {flow.name for flow in default_flows()} <= set(rows)
    # The report's launches, 400s and 400 rate are those of the calls that went out.
    assert rows == _launches_seen_on_the_wire(demo)


def test_demo_report_lists_the_failing_fields_the_traffic_produced(demo: DemoRun) -> None:
    fields = demo.stdout.split("Top failing fields", 1)[1].split("One example", 1)[0]
    for field in ("data", "flow_id", "execution_context"):
        assert re.search(rf"^\s+{re.escape(field)}\s+\d+$", fields, re.M), field
    assert re.search(r"^\s+inputData\.\S+\s+\d+$", fields, re.M)


def test_demo_report_shows_an_example_per_mistake_with_ids_and_hints(demo: DemoRun) -> None:
    examples = demo.stdout.split("One example of each mistake", 1)[1]
    for title, hint in (
        ("inputs in a 'data' envelope", "unknown-root-key"),
        ("an 'execution_context' root key", "unknown-root-key"),
        ("snake_case 'flow_id'", "missing-flow-id"),
        ("Content-Type text/plain", "content-type"),
        ("input keys without 'Flow.'", "input-key-prefix"),
        ("an input of the wrong type", "input-type"),
        ("a flow id that does not exist", "flow-not-found"),
        ("a deleted flow", "flow-deleted"),
        ("an inbound call flow launched", "flow-type-not-launchable"),
        ("a reporting client without architect:flow:launch", "permission-missing"),
        ("a batch burst over the rate limit", "rate-limited"),
    ):
        section = examples.split(title, 1)[1].split("\n\n", 1)[0]
        assert CORRELATION.search(section), title
        assert TRACE.search(section), title
        assert f"hint {hint}" in section, title
    assert "429 too.many.requests" in examples
    assert "404 not.found" in examples


def test_demo_report_shows_every_failed_call_with_a_hint(demo: DemoRun) -> None:
    coverage = re.search(
        r"^failed calls with a hint: (\d+) of (\d+) \((\d+)%\)$", demo.stdout, re.M
    )
    assert coverage, demo.stdout
    hinted, failed, share = (int(group) for group in coverage.groups())
    # The seeded mistakes, the deleted and unknown flows and the burst fail dozens of calls.
    assert failed >= 20
    assert (hinted, share) == (failed, 100)
    assert "without one:" not in demo.stdout
def test_demo_report_shows_a_failed_execution_with_its_launch_trace(demo: DemoRun) -> None:
    section = demo.stdout.split("whose flow then failed, as flowscope followed it", 1)[1]
    lines = section.strip().splitlines()
    # Callback Scheduler ignores unprefixed input keys and needs Flow.phoneNumber: a launch
    # without prefixes is accepted, then fails, and the report prefers the failure it explains.
    assert re.fullmatch(r"\s*Callback Scheduler: execution [a-z0-9]{50}", lines[0]), lines[0]
    assert lines[1].strip() == "status: FAILED"
    assert lines[3].split() == ["error", "code:", "flow.variable.not.set"]
    assert re.fullmatch(r"\s*launch trace id:\s+[0-9a-f]{32}", lines[6]), lines[6]
    assert any("execution-input-ignored [inputData.phoneNumber]" in line for line in lines)
    # The outcomes in the calls line are flowscope's, counted once per execution.
    calls = re.search(r"(\d+) execution polls \(([^)]*)\)", demo.stdout)
    assert calls is not None
    outcomes = dict(part.split(" ")[::-1] for part in calls.group(2).split(", "))
    assert set(outcomes) <= {"COMPLETED", "FAILED", "ERROR", "TERMINATED"}
    assert int(outcomes["FAILED"]) >= 1
    assert sum(int(n) for n in outcomes.values()) <= int(calls.group(1))


def test_demo_sends_its_spans_to_the_otlp_endpoint(demo: DemoRun) -> None:
    spans = demo.receiver.wait_for_spans(1, timeout=5)
    operations = {span_attributes(s).get("flow.operation") for s in spans}
    assert {"launch", "get_execution", "get_flow", "token"} <= operations
    codes = {span_attributes(s).get("flow.error.code") for s in spans}
    assert {"bad.request", "too.many.requests"} <= codes


# -- check ----------------------------------------------------------------------------------------


def _order_status_schema(tmp_path: Path) -> Path:
    flow = next(f for f in default_flows() if f.id == ORDER_STATUS)
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(flow.input_schema))
    return path


GOOD = {"flowId": ORDER_STATUS, "inputData": {"Flow.customerId": "C-1", "Flow.isVip": True}}


@pytest.mark.parametrize(
    ("payload", "options", "code"),
    [
        ({"flowId": ORDER_STATUS, "data": {"Flow.customerId": "C-1"}}, [], "unknown-root-key"),
        ({**GOOD, "execution_context": {"source": "crm"}}, [], "unknown-root-key"),
        ({"flow_id": ORDER_STATUS, "inputData": {}}, [], "missing-flow-id"),
        (GOOD, ["--content-type", "text/plain"], "content-type"),
        ({"flowId": ORDER_STATUS, "inputData": {"customerId": "C-1"}}, [], "input-key-prefix"),
        ({"flowId": ORDER_STATUS, "inputData": {"Flow.isVip": "yes"}}, ["SCHEMA"], "input-type"),
        ({"flowId": ORDER_STATUS, "inputData": "Flow.customerId=1"}, [], "input-not-object"),
    ],
    ids=["data", "execution_context", "flow_id", "text_plain", "prefix", "type", "not_object"],
)
def test_check_names_each_seed_mistake_and_exits_1(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    payload: dict[str, Any],
    options: list[str],
    code: str,
) -> None:
    file = tmp_path / "payload.json"
    file.write_text(json.dumps(payload))
    if "SCHEMA" in options:
        options = ["--schema", str(_order_status_schema(tmp_path))]
    assert main(["check", str(file), *options]) == 1
    out = capsys.readouterr().out
    assert re.search(rf"^\s+{re.escape(code)}\b", out, re.M), out


def test_check_of_a_correct_payload_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "payload.json"
    file.write_text(json.dumps(GOOD))
    schema = _order_status_schema(tmp_path)
    assert (
        main(["check", str(file), "--schema", str(schema), "--content-type", "application/json"])
        == 0
    )
    assert "no problems found" in capsys.readouterr().out


def test_check_accepts_a_whole_flow_version_document_as_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = next(f for f in default_flows() if f.id == ORDER_STATUS)
    version = tmp_path / "version.json"
    version.write_text(json.dumps({"id": flow.version, "inputSchema": flow.input_schema}))
    file = tmp_path / "payload.json"
    file.write_text(json.dumps({"flowId": ORDER_STATUS, "inputData": {"Flow.nope": 1}}))
    assert main(["check", str(file), "--schema", str(version)]) == 1
    assert "input-undeclared" in capsys.readouterr().out


def test_check_json_output_lists_code_field_and_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "payload.json"
    file.write_text(json.dumps({"flowId": ORDER_STATUS, "data": {}}))
    assert main(["check", str(file), "--json"]) == 1
    hints = json.loads(capsys.readouterr().out)
    assert hints[0]["code"] == "unknown-root-key"
    assert hints[0]["field"] == "data"
    assert "inputData" in hints[0]["message"]


def test_check_reads_the_payload_from_stdin() -> None:
    result = cli("check", "-", stdin=json.dumps({"flowId": ORDER_STATUS, "data": {}}))
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == "stdin: 1 problem"
    assert "unknown-root-key [data]" in result.stdout


# -- launch ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(client_secret=SECRET, seed=2, execution_seconds=0.2) as running:
        yield running


@pytest.fixture
def credentials(sandbox: Sandbox) -> dict[str, str]:
    return {"GENESYS_CLIENT_ID": sandbox.client_id, "GENESYS_CLIENT_SECRET": SECRET}


def assert_no_secret(result: subprocess.CompletedProcess[str]) -> None:
    output = result.stdout + result.stderr
    assert SECRET not in output
    assert "eyJ" not in output  # the sandbox's bearer tokens are JWTs
    assert not re.search(r"Bearer (?!\[REDACTED\])\S", output)


def test_launch_of_a_valid_payload_prints_the_execution_id(
    sandbox: Sandbox, credentials: dict[str, str]
) -> None:
    result = cli(
        "launch",
        "--api-base",
        sandbox.url,
        "--flow-id",
        ORDER_STATUS,
        "--input",
        "Flow.customerId=C-1",
        "--input",
        "Flow.isVip=true",
        "--wait",
        env=credentials,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"execution id [a-z0-9]{50}\b", result.stdout)
    assert "status: COMPLETED" in result.stdout
    assert '"Flow.customerId": "C-1"' in result.stdout
    assert_no_secret(result)


def test_launch_wait_prints_the_outcome_error_and_hints_of_a_failed_execution(
    sandbox: Sandbox, credentials: dict[str, str]
) -> None:
    result = cli(
        "launch",
        "--api-base",
        sandbox.url,
        "--flow-id",
        CALLBACK,
        "--input",
        "phoneNumber=+33123456789",
        # Sent as typed, mistake and all: without --no-schema the missing prefix is corrected,
        # without --force a payload with hints is not sent.
        "--no-schema",
        "--force",
        "--wait",
        env=credentials,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    after = result.stdout.split("status: FAILED\n", 1)[1].splitlines()
    assert after[:3] == [
        "  completion reason: Flow failed",
        "  error code:        flow.variable.not.set",
        "  error message:     Flow Callback Scheduler failed: variable Flow.phoneNumber has no "
        "value.",
    ]
    assert re.fullmatch(r"  launch trace id:   [0-9a-f]{32}", after[4]), after[4]
    assert after[5:7] == [
        "hints:",
        "  execution-input-ignored [inputData.phoneNumber]: The launch sent input 'phoneNumber' "
        "without the 'Flow.' prefix; the platform ignores such keys, so the flow ran without it. "
        "Send 'Flow.phoneNumber'.",  # --no-schema: flowscope saw no declared inputs
    ]
    assert "+33123456789" not in "\n".join(after[5:7])
    assert_no_secret(result)


def test_launch_of_an_invalid_payload_prints_the_diagnosis(
    sandbox: Sandbox, credentials: dict[str, str]
) -> None:
    result = cli(
        "launch",
        "--api-base",
        sandbox.url,
        "--flow-id",
        ORDER_STATUS,
        "--input",
        "customer=C-1",
        "--input",
        "Flow.isVip=yes",
        "--force",
        env=credentials,
    )
    assert result.returncode == 1
    out = result.stdout
    assert out.splitlines()[0] == "the payload has 2 problems; sending it anyway (--force)"
    assert "launch failed: 400 invalid.value" in out
    assert "failing fields: inputData.customer, inputData.Flow.isVip" in out
    assert "input-key-prefix [inputData.customer]" in out
    # The flow version was read first, so the input types were checked too.
    assert "input-type [inputData.Flow.isVip]" in out
    assert CORRELATION.search(out)
    assert TRACE.search(out)
    assert '"customer": "C-1"' in out.split("request body (redacted):", 1)[1]
    assert '"details"' in out.split("error body (redacted):", 1)[1]
    assert_no_secret(result)


def test_a_payload_with_hints_is_not_sent_without_force(
    sandbox: Sandbox, credentials: dict[str, str]
) -> None:
    launches = sandbox.stats.get("launch", 0)
    result = cli(
        "launch",
        "--api-base",
        sandbox.url,
        "--flow-id",
        ORDER_STATUS,
        "--input",
        "Flow.isVip=yes",
        env=credentials,
    )
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "the payload has 1 problem; not sent: fix it, or add --force to send it",
        "  input-type [inputData.Flow.isVip]: input 'Flow.isVip' is a JSON string, but the flow "
        "declares it archBoolean (true or false)",
    ]
    assert sandbox.stats.get("launch", 0) == launches


def test_hints_printed_before_sending_are_redacted(
    sandbox: Sandbox, credentials: dict[str, str]
) -> None:
    # A token pasted as the flow id: the flow-id-not-uuid hint quotes it, redacted.
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0"
    result = cli("launch", "--api-base", sandbox.url, "--flow-id", token, env=credentials)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "the payload has 1 problem; not sent: fix it, or add --force to send it"
    assert lines[1].startswith("  flow-id-not-uuid [flowId]: 'flowId' is '[REDACTED]")
    assert_no_secret(result)


def test_launch_types_inputs_by_the_schema_and_corrects_the_prefix(
    sandbox: Sandbox, credentials: dict[str, str]
) -> None:
    result = cli(
        "launch",
        "--api-base",
        sandbox.url,
        "--flow-id",
        ORDER_STATUS,
        "--input",
        "Flow.customerId=42",
        "--input",
        "isVip=true",
        "--input",
        "Flow.orderNumber=1042",
        "--wait",
        env=credentials,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[0] == (
        "note: --input isVip: the flow has no input 'isVip'; sending it as 'Flow.isVip', "
        "the one input it declares by that name"
    )
    # The sandbox refuses 42 for an archString and 'isVip' as a key (see the --no-schema test):
    # a completed execution means "42" and Flow.isVip were sent.
    assert "status: COMPLETED" in result.stdout
    assert json.loads(result.stdout.split("outputData:", 1)[1])["Flow.customerId"] == "42"


def test_launch_without_a_schema_sends_json_values(
    sandbox: Sandbox, credentials: dict[str, str]
) -> None:
    result = cli(
        "launch",
        "--api-base",
        sandbox.url,
        "--flow-id",
        ORDER_STATUS,
        "--input",
        "Flow.customerId=42",
        "--no-schema",
        env=credentials,
    )
    assert result.returncode == 1
    assert "launch failed: 400 invalid.value" in result.stdout
    sent = result.stdout.split("request body (redacted):", 1)[1].split("error body", 1)[0]
    assert json.loads(sent)["inputData"] == {"Flow.customerId": 42}


def test_launch_with_bad_credentials_fails_without_showing_the_secret(sandbox: Sandbox) -> None:
    result = cli(
        "launch",
        "--api-base",
        sandbox.url,
        "--flow-id",
        ORDER_STATUS,
        env={"GENESYS_CLIENT_ID": "sandbox-client", "GENESYS_CLIENT_SECRET": SECRET + "-wrong"},
    )
    assert result.returncode == 1
    assert "invalid_client" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert_no_secret(result)


# -- bad input ------------------------------------------------------------------------------------


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


BAD_INPUT = {
    "check_missing_file": (["check", "/nonexistent/payload.json"], {}, 2, "not found"),
    "check_schema_not_json": (
        ["check", "-", "--schema", "SCHEMA_NOT_JSON"],
        {},
        2,
        "not valid JSON",
    ),
    "launch_no_credentials": (
        ["launch", "--flow-id", "x", "--api-base", "http://127.0.0.1:9"],
        {"GENESYS_CLIENT_ID": "", "GENESYS_CLIENT_SECRET": ""},
        2,
        "GENESYS_CLIENT_ID",
    ),
    "launch_bad_region": (["launch", "--flow-id", "x", "--region", "mars"], "CREDS", 2, "mars"),
    "launch_unreachable": (
        ["launch", "--flow-id", "x", "--api-base", "UNUSED_WITH_USERINFO"],
        "CREDS",
        1,
        "cannot reach",
    ),
    "launch_bad_input_pair": (
        ["launch", "--flow-id", "x", "--api-base", "http://127.0.0.1:9", "--input", "oops"],
        "CREDS",
        2,
        "KEY=VALUE",
    ),
    "launch_missing_flow_id": (
        ["launch", "--api-base", "http://127.0.0.1:9"],
        "CREDS",
        2,
        "flow-id",
    ),
    "sandbox_port_in_use": (["sandbox", "--port", "BUSY"], {}, 1, "in use"),
    "demo_metrics_port_in_use": (["demo", "--metrics-port", "BUSY"], {}, 1, "in use"),
    "demo_bad_rate": (["demo", "--rate", "-1"], {}, 2, "--rate"),
    "unknown_command": (["frobnicate"], {}, 2, "invalid choice"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_gives_one_line_error_without_traceback(
    case: str, tmp_path: Path, busy_port: int
) -> None:
    argv, env, status, fragment = BAD_INPUT[case]
    not_json = tmp_path / "schema.json"
    not_json.write_text("{oops")
    replacements = {
        "SCHEMA_NOT_JSON": str(not_json),
        "BUSY": str(busy_port),
        # Credentials in the URL must not be echoed back in the error.
        "UNUSED_WITH_USERINFO": f"http://user:{SECRET}@127.0.0.1:{free_port()}",
    }
    argv = [replacements.get(a, a) for a in argv]
    if env == "CREDS":
        env = {"GENESYS_CLIENT_ID": "id", "GENESYS_CLIENT_SECRET": SECRET}
    result = cli(*argv, env=env, stdin="{}", timeout=30)
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0]
    assert SECRET not in result.stdout + result.stderr


def test_console_script_is_installed_and_lists_the_commands() -> None:
    script = Path(sys.executable).with_name("flowscope")
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    for command in ("demo", "sandbox", "check", "launch"):
        assert command in result.stdout


def test_sandbox_command_serves_the_flow_api(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "flowscope.cli", "sandbox", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        response = None
        while time.monotonic() < deadline:
            try:
                response = httpx.post(
                    f"http://127.0.0.1:{port}/oauth/token",
                    data={"grant_type": "client_credentials"},
                    auth=("sandbox-client", "sandbox-secret"),
                    timeout=2,
                )
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert response is not None and response.status_code == 200
        assert response.json()["token_type"] == "bearer"
    finally:
        process.terminate()
        process.communicate(timeout=10)


def test_sandbox_options_are_parsed_like_every_other_command() -> None:
    result = cli("sandbox", "--port", "eighty")
    assert result.returncode == 2
    assert result.stderr == (
        "flowscope sandbox: error: argument --port: expected a port number, got 'eighty' "
        "(see flowscope sandbox --help)\n"
    )
    listing = cli("sandbox", "--help")
    assert listing.returncode == 0
    assert "--execution-seconds" in listing.stdout
