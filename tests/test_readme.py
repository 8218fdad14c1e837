"""Every Python and shell block of README.md runs against the sandbox and prints what it shows.

A reader copies the README's blocks as they are, so each runnable block is executed here the
same way: a Python block as its own program (``python file.py``), a shell block with ``bash``,
both in a scratch directory, with the venv's ``bin`` first on ``PATH``. Before any block runs,
the sandbox is started with the README's own command on a free loopback port, and every block's
URLs and ports are substituted (``18080`` and your org's API hosts become the sandbox, ``9464``
another free port). A block is also run when nobody marked it: new blocks are picked up.

An HTML comment on the line before a fence says how the block is treated:

``<!-- readme-test: skip REASON -->``
    not run; REASON (required) says why, and where else it is covered. Blocks that install
    things, run ``make`` or need Docker or an org are marked so; an unmarked one fails here.
``<!-- readme-test: save FILE -->``
    a Python block that is also saved as FILE in the scratch directory, for later blocks.
``<!-- readme-test: before FILE -->``
    a Python block run followed by the saved FILE, as one program ("add this line to it").
``<!-- readme-test: terminals -->``
    a shell block of one command per terminal: every line but the last starts a server, which
    is started before any block runs and stopped after the last; the block's run is its last
    line.
``<!-- readme-test: output -->``
    a ``text`` block: what the block before it prints (stdout and stderr, as a terminal shows
    them), whole. ``…`` in a line stands for any text; a line of just ``…`` for any lines.

Blocks in other languages (``promql``, ``text``, ...) are not run.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt

README = Path(__file__).resolve().parent.parent / "README.md"
PYTHON = {"python", "py", "python3"}
SHELL = {"bash", "sh", "shell", "zsh"}
VERBS = {"skip", "save", "before", "terminals", "output"}
#: The README's sandbox port, and the other ports it binds.
SANDBOX_PORT = 18080
PORTS = (SANDBOX_PORT, 9464)
#: The hosts the README shows for an org; in the test they are the sandbox.
ORG_HOSTS = (
    "https://api.mypurecloud.com",
    "https://api.mypurecloud.ie",
    "https://login.mypurecloud.com",
)
#: The sandbox command's default credentials, which the README shows.
CREDENTIALS = {"GENESYS_CLIENT_ID": "sandbox-client", "GENESYS_CLIENT_SECRET": "sandbox-secret"}
_MARKER = re.compile(r"<!--\s*readme-test:\s*(\S+)\s*(.*?)\s*-->", re.S)
_INSTALLS = re.compile(
    r"^\s*(?:sudo\s+)?(?:pip3?|python3? -m pip|pipx|uv|apt(?:-get)?|brew|make|docker)\b", re.M
)


@dataclass
class Block:
    """One fenced block of the README, with its marker."""

    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    verb: str | None = None
    arg: str = ""
    output: Block | None = None  # the text block showing what this one prints

    @property
    def runs(self) -> bool:
        return self.lang in PYTHON | SHELL and self.verb != "skip"

    @property
    def id(self) -> str:
        return f"README.md:{self.line}-{self.lang}"


def collect(text: str) -> list[Block]:
    """The README's fenced blocks in order, each with the marker on the line before it."""
    blocks: list[Block] = []
    tokens = MarkdownIt("commonmark").parse(text)
    for index, token in enumerate(tokens):
        if token.type != "fence" or token.map is None:
            continue
        block = Block(token.map[0] + 1, token.info.split(" ")[0].lower(), token.content)
        before = tokens[index - 1] if index else None
        marker = _MARKER.search(before.content) if before and before.type == "html_block" else None
        if marker:
            block.verb, block.arg = marker.group(1), marker.group(2)
        _check(block, blocks)
        if block.verb == "output":
            blocks[-1].output = block
        blocks.append(block)
    return blocks


def _check(block: Block, earlier: list[Block]) -> None:
    where = f"README.md line {block.line}"
    if block.lang == "console":
        raise ValueError(f"{where}: write commands as ```bash and what they print as a text block")
    if block.verb is None:
        return
    if block.verb not in VERBS:
        raise ValueError(f"{where}: unknown readme-test marker {block.verb!r}")
    if block.verb == "skip" and not block.arg:
        raise ValueError(f"{where}: say why the block is not run: readme-test: skip REASON")
    if block.verb in ("save", "before") and (block.lang not in PYTHON or not block.arg):
        raise ValueError(f"{where}: readme-test: {block.verb} FILE marks a Python block")
    if block.verb == "before" and not any(b.verb == "save" and b.arg == block.arg for b in earlier):
        raise ValueError(f"{where}: no earlier block is saved as {block.arg}")
    if block.verb == "terminals" and (block.lang not in SHELL or len(_commands(block)) < 2):
        raise ValueError(f"{where}: a terminals block is a shell block of two commands or more")
    if block.verb == "output" and not (earlier and earlier[-1].runs and not earlier[-1].output):
        raise ValueError(f"{where}: an output block follows the block it shows, which must run")


def _commands(block: Block) -> list[str]:
    return [line for line in block.code.splitlines() if line.strip()]


def expected_output_pattern(shown: str) -> re.Pattern[str]:
    """The regular expression a run's output must match whole for the README's text block."""
    parts = []
    for line in shown.strip("\n").splitlines():
        if line.strip() == "…":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append("[^\n]*?".join(re.escape(p) for p in line.rstrip().split("…")) + "\n")
    return re.compile("".join(parts))


def output_matches(shown: str, printed: str) -> bool:
    normalised = "".join(line.rstrip() + "\n" for line in printed.strip("\n").splitlines())
    return expected_output_pattern(shown).fullmatch(normalised) is not None


BLOCKS = collect(README.read_text(encoding="utf-8"))
RUN = [block for block in BLOCKS if block.runs]


# -- the scratch directory, the substitutions and the README's servers -------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Reader:
    """A reader's machine: a scratch directory, the README's servers, an environment."""

    directory: Path
    ports: dict[int, int]

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.ports[SANDBOX_PORT]}"

    def substitute(self, text: str) -> str:
        for host in ORG_HOSTS:
            text = text.replace(host, self.sandbox_url)
        for shown, port in self.ports.items():
            text = re.sub(rf"\b{shown}\b", str(port), text)
        return text

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        return {**env, **CREDENTIALS, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}

    def run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            cwd=self.directory,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # in the order a terminal shows them
            text=True,
            timeout=120,
        )

    def run_python(self, block: Block) -> subprocess.CompletedProcess[str]:
        code = self.substitute(block.code)
        if block.verb == "before":
            code += "\n" + (self.directory / block.arg).read_text(encoding="utf-8")
        program = self.directory / f"readme_line_{block.line}.py"
        program.write_text(code, encoding="utf-8")
        return self.run([sys.executable, program.name])

    def run_shell(self, block: Block) -> subprocess.CompletedProcess[str]:
        if block.verb == "terminals":
            script = _commands(block)[-1]  # the servers already run
        else:
            script = block.code
            installs = _INSTALLS.search(script)
            assert installs is None, (
                f"{block.id} runs {installs.group(0).strip()!r}: this test does not install or "
                "run make; mark the block <!-- readme-test: skip REASON --> and say where it is "
                "covered"
            )
        return self.run(["bash", "-e", "-o", "pipefail", "-c", self.substitute(script)])


def _wait_for_port(port: int, process: subprocess.Popen[Any], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text(encoding="utf-8")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}: {log.read_text(encoding='utf-8')}")


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reader]:
    reader = Reader(tmp_path_factory.mktemp("readme"), {p: _free_port() for p in PORTS})
    for block in BLOCKS:
        if block.verb == "save":
            saved = reader.substitute(block.code)
            (reader.directory / block.arg).write_text(saved, encoding="utf-8")
    servers: list[subprocess.Popen[Any]] = []
    try:
        for block in BLOCKS:
            if block.verb != "terminals":
                continue
            for n, command in enumerate(_commands(block)[:-1]):
                log = reader.directory / f"server_line_{block.line}_{n}.log"
                with log.open("w") as out:
                    server = subprocess.Popen(
                        ["bash", "-c", reader.substitute(command)],
                        cwd=reader.directory,
                        env=reader.env(),
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,  # its own process group, stopped as one below
                    )
                servers.append(server)
                for shown, port in reader.ports.items():
                    if re.search(rf"\b{shown}\b", command):
                        _wait_for_port(port, server, log)
        yield reader
    finally:
        for server in servers:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGINT)  # Ctrl-C, as the README says
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=10)


# -- the tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("block", RUN, ids=[block.id for block in RUN])
def test_readme_block_runs_and_prints_what_the_readme_shows(reader: Reader, block: Block) -> None:
    result = reader.run_python(block) if block.lang in PYTHON else reader.run_shell(block)
    assert result.returncode == 0, f"{block.id} failed:\n{result.stdout}"
    assert "Traceback" not in result.stdout, result.stdout
    if block.output is not None:
        shown = reader.substitute(block.output.code)
        assert output_matches(shown, result.stdout), (
            f"{block.id} printed:\n{result.stdout}\nbut README.md line {block.output.line} "
            f"shows:\n{shown}"
        )


def test_the_readme_starts_with_a_snippet_to_save_and_the_commands_to_try_it() -> None:
    first = RUN[0]
    assert (first.lang, first.verb, first.arg) == ("python", "save", "snippet.py")
    terminals = [block for block in BLOCKS if block.verb == "terminals"]
    assert len(terminals) == 1
    commands = [line.split("#")[0].strip() for line in _commands(terminals[0])]
    assert commands == [f"flowscope sandbox --port {SANDBOX_PORT}", "python snippet.py"]
    assert f'API = "http://127.0.0.1:{SANDBOX_PORT}"' in first.code


def _program(reader: Reader, *blocks: Block) -> tuple[str, str]:
    """Run ``blocks`` as one program; its stdout and stderr apart."""
    program = reader.directory / "acceptance.py"
    program.write_text("\n".join(reader.substitute(b.code) for b in blocks), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, program.name],
        cwd=reader.directory,
        env=reader.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout, result.stderr


HINT_LINE = (
    "    hint unknown-root-key [data]: the platform rejected 'data' (the error's fieldName); "
    "'data' is not a launch field: flow inputs go under "
    """'inputData', e.g. {"inputData": {"Flow.customerId": "42"}}"""
)


def test_the_first_block_alone_prints_the_warning_with_its_hint(reader: Reader) -> None:
    stdout, stderr = _program(reader, RUN[0])
    assert stdout == ""
    warning, hint = stderr.splitlines()
    assert warning.startswith(
        "WARNING:flowscope:flow call failed: POST /api/v2/flows/executions "
        "flow=9b1f3c2e-6a4d-4e8b-9f21-3c7d5a0e8b14 -> 400 bad.request: Invalid input "
        "[fields: data] (correlation id "
    )
    assert hint == HINT_LINE


def _spans(stdout: str) -> list[dict[str, Any]]:
    decoder, spans, at = json.JSONDecoder(), [], 0
    while stdout[at:].strip():
        at += len(stdout[at:]) - len(stdout[at:].lstrip())
        span, at = decoder.raw_decode(stdout, at)
        spans.append(span)
    return spans


def test_the_console_line_prints_the_span_with_the_fields_and_the_hint(reader: Reader) -> None:
    (console,) = [block for block in RUN if block.verb == "before"]
    assert "console=True" in console.code
    stdout, stderr = _program(reader, console, RUN[0])
    (span,) = _spans(stdout)
    assert span["attributes"]["flow.error.fields"] == ["data"]
    assert span["attributes"]["flow.operation"] == "launch"
    hints = [e["attributes"] for e in span["events"] if e["name"] == "flow.hint"]
    assert [h["hint.code"] for h in hints] == ["unknown-root-key"]
    assert stderr.splitlines()[1] == HINT_LINE
    # The log line and the span name the same trace.
    assert f"trace id {span['context']['trace_id'].removeprefix('0x')})" in stderr


def test_every_block_not_run_says_why() -> None:
    not_run = [block for block in BLOCKS if block.lang in PYTHON | SHELL and not block.runs]
    assert not_run, "the README has install and make blocks, which are marked"
    unexplained = [block.id for block in not_run if len(block.arg.split()) < 3]
    assert unexplained == [], "say in a few words why a block is not run, and where it is covered"


@pytest.mark.parametrize(
    ("printed", "matches"),
    [
        ("WARNING x (correlation id 42, trace id -)\n    hint a\n", True),
        ("WARNING x (correlation id 42, trace id -)\n    hint b\n", False),
        ("WARNING x (correlation id 42, trace id -)\n", False),
        ("WARNING x (correlation id 42, trace id -)\n    hint a\nmore\n", False),
        ("before\nWARNING x (correlation id 42, trace id -)\n    hint a\n", False),
    ],
)
def test_output_blocks_are_matched_whole(printed: str, matches: bool) -> None:
    shown = "WARNING x (correlation id …, trace id -)\n    hint a\n"
    assert output_matches(shown, printed) is matches


def test_a_line_of_ellipsis_stands_for_any_lines_and_only_those() -> None:
    shown = "{\n…\n  b\n…\n}\n"
    assert output_matches(shown, "{\n  a\n  b\n  c\n}\n")
    assert output_matches(shown, "{\n  b\n}\n")
    assert not output_matches(shown, "{\n  a\n  c\n}\n")


def test_markers_are_read_from_the_line_before_the_fence() -> None:
    text = (
        "<!-- readme-test: save s.py -->\n```python\nx = 1\n```\n\n"
        "<!-- readme-test: output -->\n```text\n1\n```\n\n"
        "<!-- readme-test: skip needs an org to call -->\n```bash\nmake demo\n```\n\n"
        "```promql\nup\n```\n"
    )
    blocks = collect(text)
    assert [(b.line, b.lang, b.verb, b.arg) for b in blocks] == [
        (2, "python", "save", "s.py"),
        (7, "text", "output", ""),
        (12, "bash", "skip", "needs an org to call"),
        (16, "promql", None, ""),
    ]
    assert blocks[0].output is blocks[1]
    assert [b.runs for b in blocks] == [True, False, False, False]
    with pytest.raises(ValueError, match="say why"):
        collect("<!-- readme-test: skip -->\n```bash\nmake\n```\n")
    with pytest.raises(ValueError, match="unknown readme-test marker"):
        collect("<!-- readme-test: skp because -->\n```bash\nls\n```\n")
