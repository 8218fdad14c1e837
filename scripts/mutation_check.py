"""Break the core on purpose, a few ways, and require the tests that guard each part to fail.

Each mutation copies ``src/`` to a temporary directory, applies one exact text substitution
(the target must occur exactly once, so a mutation can never silently test nothing), and runs
only the tests that guard it with ``PYTHONPATH`` pointing at the mutated copy. The working tree
is never modified. Exit status 0 only when every mutation is killed.

Usage: ``python scripts/mutation_check.py [--only NAME,...]`` from the repository root.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutation:
    name: str
    #: Path under ``src/`` of the file to break.
    file: str
    #: Text that must occur exactly once in that file, and what replaces it.
    old: str
    new: str
    #: The tests that guard this behaviour (pytest node ids or files).
    tests: tuple[str, ...]


# ---------------------------------------------------------------------------------------------
# THE MUTATIONS. When the core is refactored, re-point ``file`` / ``old`` / ``new`` here.
# ---------------------------------------------------------------------------------------------
MUTATIONS: tuple[Mutation, ...] = (
    Mutation(
        name="count an unmatched call in metrics",
        file="flowscope/_engine.py",
        old="        if match is None:\n            return None\n",
        new='        if match is None:\n            match = RouteMatch("launch", "/other", {})\n',
        tests=(
            "tests/test_transport.py::test_unmatched_path_gets_the_plain_span_and_nothing_else",
        ),
    ),
    Mutation(
        name="skip redacting the authorization header",
        file="flowscope/_redact.py",
        old="        if lower in _PROTOCOL_HEADERS:\n",
        new='        if lower in _PROTOCOL_HEADERS or lower == "authorization":\n',
        tests=(
            "tests/test_redact.py::test_authorization_header_keeps_its_scheme_only",
            "tests/test_leaks.py::test_captured_headers_keep_the_scheme_and_lose_the_credential",
            "tests/test_transport.py::test_secrets_never_reach_spans_or_logs",
        ),
    ),
    Mutation(
        name="drop flow.error.fields from the span",
        file="flowscope/_otel.py",
        old='            attrs["flow.error.fields"] = list(error.fields)\n',
        new="            pass\n",
        tests=(
            "tests/test_transport.py::test_genesys_400_span_has_every_attribute_and_event_sync",
        ),
    ),
    Mutation(
        name="let a raising on_record reach the caller",
        file="flowscope/_sinks.py",
        old="            except Exception as exc:\n                self._on_error(stage, exc)\n",
        new="            except KeyError as exc:\n                self._on_error(stage, exc)\n",
        tests=(
            "tests/test_on_record.py::"
            "test_a_raising_on_record_is_counted_under_sink_and_never_reaches_the_caller",
        ),
    ),
    Mutation(
        name="leave the record on the caller's response",
        file="flowscope/_otel.py",
        old="extensions.pop(RECORD_EXTENSION, None)",
        new="extensions.get(RECORD_EXTENSION, None)",
        tests=(
            "tests/test_on_record.py::"
            "test_on_record_gets_one_redacted_record_per_flow_call_on_a_sync_client",
        ),
    ),
    Mutation(
        name="set no span status from the record",
        file="flowscope/_otel.py",
        old="        span.set_status(StatusCode.ERROR, status_description(record))\n",
        new="        pass\n",
        tests=(
            "tests/test_transport.py::test_genesys_400_span_has_every_attribute_and_event_sync",
        ),
    ),
    Mutation(
        name="stop replaying the captured chunks (sync)",
        file="flowscope/_transport.py",
        old="        chunks, self._chunks = self._chunks, []\n        yield from chunks\n",
        new="        self._chunks = []\n",
        tests=(
            "tests/test_transport.py::test_sync_caller_gets_exactly_the_uninstrumented_response",
        ),
    ),
    Mutation(
        name="stop replaying the captured chunks (async)",
        file="flowscope/_transport.py",
        old="        for chunk in chunks:\n            yield chunk\n        if self._error",
        new="        del chunks\n        if self._error",
        tests=(
            "tests/test_transport.py::test_async_caller_gets_exactly_the_uninstrumented_response",
        ),
    ),    Mutation(
        name="forget the tokens the token endpoint issued",
        file="flowscope/_engine.py",
        old='_READ_SUCCESS = frozenset({"launch", "get_execution", "get_flow", "token"})',
        new='_READ_SUCCESS = frozenset({"launch", "get_execution", "get_flow"})',
        tests=(
            "tests/test_advice.py::"
            "test_one_failed_call_of_each_class_gets_exactly_its_hint_on_the_span_and_in_the_log",
        ),
    ),
    Mutation(
        name="call a token-endpoint 400 of any kind a bad client",
        file="flowscope/_advice.py",
        old="if status == 401 or (status == 400 and call.error_code in _OAUTH_CLIENT_CODES):",
        new="if status in (400, 401):",
        tests=("tests/test_advice.py::test_near_misses_of_auth_client_invalid",),
    ),
    Mutation(
        name="export the _created series again (the series budget)",
        file="flowscope/_metrics.py",
        old='if not s.name.endswith("_created")',
        new="if s",
        tests=("tests/test_series_budget.py",),
    ),
    Mutation(
        name="a spent rate-limit window never reads as reset",
        file="flowscope/_labels.py",
        old="used = count if count is None or left is None or left > 0 else 0",
        new="used = count",
        tests=("tests/test_ratelimit.py",),
    ),
    Mutation(
        name="OpenTelemetry exemplars point at another span",
        file="flowscope/_otel_metrics.py",
        old='span_id=int(ids["span_id"], 16),',
        new='span_id=int(ids["span_id"], 16) ^ 1,',
        tests=("tests/test_otel_metrics.py",),
    ),
    Mutation(
        name="a call's redaction forgets what its request had redacted (no echo rule)",
        file="flowscope/_redact.py",
        old="            self._echo_cache = _Echo.remember(self._found)\n",
        new="            self._echo_cache = None\n",
        tests=(
            "tests/test_redact.py::test_header_query_and_userinfo_secrets_echoed_back_are_removed",
            "tests/test_leaks.py::"
            "test_a_pin_cvv_and_token_quoted_in_an_error_are_redacted_where_a_user_reads_them",
        ),
    ),
    Mutation(
        name="a JSON body passes as plain with a sensitive key in it",
        file="flowscope/_redact.py",
        old="            if sensitive or self._scrub(string)[1]:\n",
        new="            if self._scrub(string)[1]:\n",
        tests=(
            "tests/test_redact.py::test_a_sensitive_key_with_a_plain_value_is_redacted",
            "tests/test_redact.py::test_property_a_json_body_is_redacted_as_its_document_is",
        ),
    ),
    Mutation(
        name="a JSON body passes as plain with a card number sent as a number",
        file="flowscope/_redact.py",
        old="        if self._pii and _DIGIT_RUN_RE.search(outside):\n",
        new="        if False:\n",
        tests=(
            "tests/test_redact.py::test_a_card_number_sent_as_a_json_number_is_redacted",
            "tests/test_redact.py::test_property_a_json_body_is_redacted_as_its_document_is",
        ),
    ),
    Mutation(
        name="a JSON body with escapes is read from its text",
        file="flowscope/_redact.py",
        old='        if "\\\\" in source:\n            return False\n',
        new="        if False:\n            return False\n",
        tests=(
            "tests/test_redact.py::test_a_key_spelt_with_escapes_is_read_as_the_parser_reads_it",
        ),
    ),
    Mutation(
        name="no string of a JSON body is searched for the request's echoes",
        file="flowscope/_redact.py",
        old="            if quotes % 2:\n                end = ",
        new="            if False:\n                end = ",
        tests=(
            "tests/test_redact.py::test_a_pin_quoted_back_in_every_genesys_error_shape_is_removed",
            "tests/test_redact.py::"
            "test_property_an_echoing_json_body_is_redacted_as_its_document_is",
        ),
    ),
    Mutation(
        name="a poll shows its execution's error without the launch's secret inputs removed",
        file="flowscope/_engine.py",
        old="        redaction = call.redaction = redaction.joined(launch.secrets)\n",
        new="        pass\n",
        tests=(
            "tests/test_leaks.py::"
            "test_secret_inputs_quoted_by_the_execution_error_are_redacted_on_every_poll",
        ),
    ),
    Mutation(
        name="a request body in UTF-16 or UTF-32 is read as UTF-8 text",
        file="flowscope/_redact.py",
        old='    if body[:3] == b"\\xef\\xbb\\xbf" or b"\\x00" in body[:4]:\n',
        new="    if False:\n",
        tests=(
            "tests/test_redact.py::test_a_card_number_in_a_utf16_or_utf32_request_body_is_redacted",
            "tests/test_redact.py::test_property_a_request_body_is_redacted_as_its_document_is",
        ),
    ),
    Mutation(
        name="captured response headers redacted without the call's echoes",
        file="flowscope/_transport.py",
        old="        response.extensions[REDACTION_EXTENSION] = call.redaction\n",
        new="        pass\n",
        tests=(
            "tests/test_leaks.py::"
            "test_a_response_header_quoting_the_token_is_redacted_in_the_captured_attribute",
        ),
    ),
    Mutation(
        name="the exception event of a flow call redacted without the call's echoes",
        file="flowscope/_otel.py",
        old="            if isinstance(exc, Exception) and not _written(span):\n",
        new="            if isinstance(exc, Exception):\n",
        tests=(
            "tests/test_leaks.py::test_secrets_quoted_by_a_transport_exception_never_leave_the_process",
        ),
    ),
)


def _mutated_copy(mutation: Mutation, into: Path) -> Path:
    """Copy ``src/`` under ``into`` and apply the mutation; raise if the target is not unique."""
    src = into / "src"
    shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    target = src / mutation.file
    text = target.read_text()
    found = text.count(mutation.old)
    if found != 1:
        raise SystemExit(
            f"mutation {mutation.name!r}: its target text occurs {found} times in "
            f"src/{mutation.file} (must be exactly once); re-point it in MUTATIONS"
        )
    target.write_text(text.replace(mutation.old, mutation.new))
    return src


def _env(src: Path | None) -> dict[str, str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))
    return env


def _imports_from(src: Path) -> None:
    """Fail loudly unless ``import flowscope`` picks the mutated copy."""
    done = subprocess.run(
        [sys.executable, "-c", "import flowscope; print(flowscope.__file__)"],
        env=_env(src),
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    path = done.stdout.strip()
    if done.returncode != 0 or not Path(path).is_relative_to(src):
        raise SystemExit(f"the mutated copy is not what the tests import: {path or done.stderr}")


def _pytest(tests: tuple[str, ...], src: Path | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
        env=_env(src),
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="comma-separated mutation names to run")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if args.only is None or m.name in args.only.split(",")]
    if not chosen:
        raise SystemExit("no mutation matches --only")

    started = time.monotonic()
    # The guarding tests must pass on the unbroken code, or a "kill" would mean nothing.
    tests = tuple(dict.fromkeys(t for m in chosen for t in m.tests))
    baseline = _pytest(tests, None)
    if baseline.returncode != 0:
        sys.stdout.write(baseline.stdout[-4000:] + baseline.stderr[-2000:])
        raise SystemExit("the guarding tests fail on the unbroken code")

    def run(mutation: Mutation) -> tuple[str, str]:
        with tempfile.TemporaryDirectory(prefix="flowscope-mutant-") as tmp:
            src = _mutated_copy(mutation, Path(tmp))
            _imports_from(src)
            done = _pytest(mutation.tests, src)
        if done.returncode == 1:  # pytest: tests ran and some failed
            return mutation.name, "killed"
        if done.returncode == 0:
            return mutation.name, "SURVIVED"
        # A collection or usage error: the mutant broke more than the behaviour under test.
        sys.stdout.write(done.stdout[-4000:] + done.stderr[-2000:])
        return mutation.name, f"error (pytest exit {done.returncode})"

    # Each mutant is its own pytest process on its own copy: one per core at a time.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = list(pool.map(run, chosen))

    width = max(len(name) for name, _ in results)
    print(f"{'mutation':<{width}}  result")
    for name, verdict in results:
        print(f"{name:<{width}}  {verdict}")
    bad = [name for name, verdict in results if verdict != "killed"]
    print(
        f"{len(results) - len(bad)} of {len(results)} mutations killed "
        f"in {time.monotonic() - started:.0f} s"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
