"""Every command in the README's CLI section, and every example in ``launch --help``, as written.

They run against a real sandbox on loopback, through the installed ``flowscope`` script, from the
repository root (the README's paths are relative to it). Only the sandbox's port changes: 8080
may be taken, so a free one stands in for it everywhere.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FLOWSCOPE = str(Path(sys.executable).with_name("flowscope"))
ORDER_STATUS = "9b1f3c2e-6a4d-4e8b-9f21-3c7d5a0e8b14"


def readme_cli_block() -> list[str]:
    """The lines of the first bash block under '## Command line'."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Command line\n", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"```bash\n(.*?)```", section, re.S)
    assert found, "no bash block in the README's CLI section"
    return [line for line in found.group(1).splitlines() if line.strip()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Session:
    """A shell session as the README's block sets it up: a sandbox and the exported variables."""

    port: int
    env: dict[str, str]
    sandbox_first_line: str

    def words(self, line: str) -> list[str]:
        words = shlex.split(line.replace(":8080", f":{self.port}"), comments=True)
        assert words[0] == "flowscope", line
        return [FLOWSCOPE, *words[1:]]

    def run(self, line: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.words(line),
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            env={**os.environ, **self.env},
        )


@pytest.fixture(scope="module")
def session() -> Iterator[Session]:
    lines = readme_cli_block()
    # Seeded: the sandbox fails a few executions of each flow, and --wait must see a COMPLETED one.
    assert lines[0].startswith("flowscope sandbox --port 8080 --seed 1 &"), lines[0]
    assert lines[1].startswith("export "), lines[1]
    env = dict(word.split("=", 1) for word in shlex.split(lines[1])[1:])
    port = free_port()
    words = shlex.split(lines[0].replace("--port 8080", f"--port {port}"), comments=True)
    assert words[-1] == "&"
    process = subprocess.Popen(
        [FLOWSCOPE, *words[1:-1]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline().rstrip("\n")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield Session(port, env, first)
    finally:
        process.terminate()
        process.communicate(timeout=10)


# Per command of the block after the first two (sandbox, export): exit code and first line.
EXPECTED: list[tuple[int, str]] = [
    (0, f"POST http://127.0.0.1:{{port}}/api/v2/flows/executions  flowId={ORDER_STATUS}"),
    (
        0,
        "note: --input isVip: the flow has no input 'isVip'; sending it as 'Flow.isVip', "
        "the one input it declares by that name",
    ),
    (1, "the payload has 1 problem; not sent: fix it, or add --force to send it"),
    (1, "examples/payloads/data-envelope.json: 1 problem"),
    (1, "["),
    (0, "examples/payloads/good.json: no problems found"),
]


def test_the_readme_block_starts_the_sandbox_it_talks_to(session: Session) -> None:
    assert (
        session.sandbox_first_line
        == f"flowscope sandbox listening on http://127.0.0.1:{session.port}"
    )
    assert session.env == {
        "GENESYS_CLIENT_ID": "sandbox-client",
        "GENESYS_CLIENT_SECRET": "sandbox-secret",
    }


def test_the_readme_block_has_the_commands_this_test_expects() -> None:
    assert len(readme_cli_block()) == 2 + len(EXPECTED)


@pytest.mark.parametrize("index", range(len(EXPECTED)))
def test_every_readme_cli_command_works_as_written(session: Session, index: int) -> None:
    line = readme_cli_block()[2 + index]
    status, first = EXPECTED[index]
    result = session.run(line)
    assert result.returncode == status, line + "\n" + result.stdout + result.stderr
    assert result.stdout.splitlines()[0] == first.format(port=session.port), line
    assert result.stderr == "", line


def test_the_readme_launch_with_wait_completes(session: Session) -> None:
    line = readme_cli_block()[2]
    assert "--wait" in line
    result = session.run(line)
    assert "status: COMPLETED" in result.stdout
    assert json.loads(result.stdout.split("outputData:", 1)[1])["Flow.customerId"] == "42"


def test_the_readme_check_with_json_lists_both_problems(session: Session) -> None:
    line = readme_cli_block()[6]
    assert "--json" in line
    result = session.run(line)
    codes = [hint["code"] for hint in json.loads(result.stdout)]
    assert codes == ["content-type", "unknown-root-key"]


def launch_help_examples() -> list[str]:
    result = subprocess.run(
        [FLOWSCOPE, "launch", "--help"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0
    return [
        line.strip()
        for line in result.stdout.splitlines()
        if line.strip().startswith("flowscope launch ")
    ]


def test_launch_help_examples_work_as_written(session: Session) -> None:
    examples = launch_help_examples()
    assert len(examples) == 2
    assert "--input Flow.customerId=42" in examples[0]
    assert "--input isVip=true" in examples[1]
    for line in examples:
        result = session.run(line)
        assert result.returncode == 0, line + "\n" + result.stdout + result.stderr
        assert re.search(r"^launched: execution id \w+$", result.stdout, re.M), line
        assert result.stderr == "", line


def test_the_example_flow_version_is_what_the_sandbox_serves() -> None:
    """examples/payloads/order-status-version.json is a copy: it must not drift from the sandbox."""
    import httpx

    from flowscope.sandbox import Sandbox

    sandbox = Sandbox()
    with httpx.Client(transport=sandbox.transport(), base_url="http://sandbox") as client:
        token = client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(sandbox.client_id, sandbox.client_secret),
        ).json()["access_token"]
        served = client.get(
            f"/api/v2/flows/{ORDER_STATUS}/versions/3.0",
            headers={"Authorization": f"Bearer {token}"},
        ).json()
    shipped = json.loads((ROOT / "examples/payloads/order-status-version.json").read_text())
    assert shipped == served
