"""The field corpus: launch payloads in the shapes people send, and the hints each must get.

Every case in ``tests/corpus/*.json`` goes three ways, as a user would meet it: through
``flowscope check --json`` (the CLI, in-process), through an instrumented client against a loopback
server that answers 400 (the ``flow.hint`` span events), and through the WARNING log record. Each
must give exactly the expected codes, messages that name the fix (``say``), never the advice the
case rules out (``never``); a correct payload gets no hint at all, in every shape.
"""

from __future__ import annotations

import copy
import json
import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

import flowscope
from flowscope._hints import HINT_CODES
from flowscope.cli import main
from flowscope.sandbox import Sandbox

from .conftest import LogCapture, report_lines
from .servers import Reply, ScriptedServer

CORPUS = Path(__file__).parent / "corpus"
SCHEMAS: dict[str, Any] = json.loads((CORPUS / "schemas.json").read_text())
CASES: list[dict[str, Any]] = [
    case
    for file in sorted(CORPUS.glob("*.json"))
    if file.name != "schemas.json"
    for case in json.loads(file.read_text())
]
LAUNCH = "/api/v2/flows/executions"
#: Advice no hint may ever give: a doubled prefix is never the fix.
NEVER_ANYWHERE = ("'Flow.Flow", "'Flow.flow", "'Flow.FLOW", '"Flow.Flow')
SOURCES = (
    "https://",
    "flowscope SPEC §9",
    "flowscope issue 17",
    "src/flowscope/sandbox/flows.json",
)


def _body(case: dict[str, Any]) -> bytes:
    if "raw" in case:
        return str(case["raw"]).encode()
    payload = copy.deepcopy(case["payload"])
    if "fill" in case:
        fill = case["fill"]
        payload["inputData"][fill["key"]] = [fill["item"]] * fill["count"]
    if "pad" in case:
        key, size = case["pad"]["key"], case["pad"]["bytes"]
        payload["inputData"][key] = ""
        payload["inputData"][key] = "x" * (size - len(json.dumps(payload).encode()))
        assert len(json.dumps(payload).encode()) == size
    return json.dumps(payload, ensure_ascii=False).encode()


def _schema(case: dict[str, Any]) -> dict[str, Any] | None:
    return SCHEMAS[case["payload"]["flowId"]] if case.get("schema") else None


def _judge(case: dict[str, Any], hints: list[tuple[str, str]]) -> None:
    """The hints (code, message) are exactly the case's, say its fix and never what it rules out."""
    assert sorted(code for code, _ in hints) == case["expect"], hints
    text = "\n".join(message for _, message in hints)
    for fix in case.get("say", []):
        assert fix in text, (fix, hints)
    # What is ruled out is advice: the user's own keys, quoted back, do not count.
    advice = text
    for key in sorted(_keys(case.get("payload")), key=len, reverse=True):
        advice = advice.replace(f"'{key}'", "'<key>'")
    for wrong in (*case.get("never", []), *NEVER_ANYWHERE):
        assert wrong not in advice, (wrong, hints)


def _keys(payload: object) -> set[str]:
    if not isinstance(payload, dict):
        return set()
    inputs = payload.get("inputData")
    return {str(k) for k in payload} | (_keys(inputs) if isinstance(inputs, dict) else set())


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_check_cli_gives_the_case_its_hints(
    case: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = tmp_path / "payload.json"
    payload.write_bytes(_body(case))
    argv = ["check", str(payload), "--json"]
    schema = _schema(case)
    if schema is not None:
        (tmp_path / "schema.json").write_text(json.dumps(schema))
        argv += ["--schema", str(tmp_path / "schema.json")]
    if "content_type" in case:
        argv += ["--content-type", case["content_type"]]
    status = main(argv)
    hints = json.loads(capsys.readouterr().out)
    _judge(case, [(h["code"], h["message"]) for h in hints])
    # A body that is not a JSON object cannot be linted: a usage error, with the hint that says why.
    assert status == (2 if "not-json" in case["expect"] else 1 if case["expect"] else 0)


# -- the span and the log line ------------------------------------------------------------------


class _Wire:
    """An instrumented client, a loopback server answering every launch 400, and their spans."""

    def __init__(self, server: ScriptedServer) -> None:
        self.server = server
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        # One client knows the flows' input schemas (from its config), one does not.
        self.clients = {
            known: flowscope.instrument(
                httpx.Client(base_url=server.url, timeout=10),
                config=flowscope.FlowScopeConfig(input_schemas=SCHEMAS if known else {}),
                tracer_provider=self.provider,
                metrics=flowscope.FlowMetrics(CollectorRegistry()),
            )
            for known in (True, False)
        }

    def launch(self, case: dict[str, Any]) -> list[tuple[str, str]]:
        details = [{"errorCode": "INVALID_VALUE", "fieldName": f} for f in case.get("rejected", [])]
        error = {
            "message": "The request could not be understood by the server due to malformed syntax.",
            "code": "bad.request",
            "status": 400,
            "contextId": "5a3b3f1e-8c2d-4e0f-9a1b-2c3d4e5f6a7b",
            "details": details,
            "errors": [],
        }
        self.server.replies[LAUNCH] = Reply(
            400, [("Content-Type", "application/json")], json.dumps(error).encode()
        )
        headers = {}
        if case.get("content_type", "application/json"):
            headers["Content-Type"] = case.get("content_type", "application/json")
        self.exporter.clear()
        client = self.clients[bool(case.get("schema"))]
        reply = client.post(LAUNCH, content=_body(case), headers=headers)
        assert reply.status_code == 400
        (span,) = self.exporter.get_finished_spans()
        return [
            (str(e.attributes["hint.code"]), str(e.attributes["hint.message"]))
            for e in span.events
            if e.name == "flow.hint" and e.attributes is not None
        ]


@pytest.fixture(scope="module")
def wire() -> Iterator[_Wire]:
    with ScriptedServer() as server:
        ready = _Wire(server)
        yield ready
        for client in ready.clients.values():
            client.close()
        ready.provider.shutdown()


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_span_and_log_line_give_the_case_its_hints(
    case: dict[str, Any], wire: _Wire, flowscope_logs: LogCapture
) -> None:
    on_span = wire.launch(case)
    _judge(case, on_span)
    for field in case.get("rejected", []):
        assert all(m.startswith(f"the platform rejected '{field}'") for _, m in on_span), on_span
    (record,) = [r for r in flowscope_logs.records if r.levelno == logging.WARNING]
    logged = getattr(record, "flowscope", {}).get("hints", [])
    assert [(h["code"], h["message"]) for h in logged] == on_span


# -- what the corpus holds ----------------------------------------------------------------------


def test_corpus_holds_real_shapes_each_with_its_source(request: pytest.FixtureRequest) -> None:
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids))
    for case in CASES:
        assert case["source"].startswith(SOURCES), case["id"]
        assert case["how"], case["id"]
        assert ("payload" in case) != ("raw" in case), case["id"]
        assert (case["mistake"] is None) == (case["expect"] == []), case["id"]
    mistakes = Counter(c["mistake"] for c in CASES if c["mistake"])
    correct = sum(1 for c in CASES if c["mistake"] is None)
    forum = sum(1 for c in CASES if c["source"].startswith("https://") and "forum" in c["source"])
    posted = sum(1 for c in CASES if not c["how"].startswith("derived"))
    assert len(CASES) >= 100
    assert correct >= 20
    assert len(mistakes) >= 40
    assert forum >= 40
    codes = {code for c in CASES for code in c["expect"]}
    assert codes == set(HINT_CODES) - {"flow-id-in-path"}
    report_lines(
        request,
        [
            f"corpus: {len(CASES)} cases, {len(mistakes)} distinct mistakes, "
            f"{correct} correct shapes, {forum} from forum threads, {posted} as posted"
        ],
    )


def test_platform_word_and_advice_meet_on_the_span_against_the_sandbox() -> None:
    """The sandbox refuses an unprefixed input by name; the hint quotes that and gives the fix."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    order = "9b1f3c2e-6a4d-4e8b-9f21-3c7d5a0e8b14"
    with Sandbox(seed=1) as sandbox:
        token = sandbox.issue_token()
        client = httpx.Client(
            base_url=sandbox.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        metrics = flowscope.FlowMetrics(CollectorRegistry())
        with flowscope.instrument(client, tracer_provider=provider, metrics=metrics):
            reply = client.post(LAUNCH, json={"flowId": order, "inputData": {"customerId": "C-1"}})
            nested = client.post(
                LAUNCH, json={"flowId": order, "inputData": {"Flow": {"isVip": True}}}
            )
    provider.shutdown()
    assert (reply.status_code, nested.status_code) == (400, 400)
    first, second = exporter.get_finished_spans()
    hints = [
        [
            (e.attributes["hint.code"], e.attributes["hint.message"])
            for e in span.events
            if e.name == "flow.hint" and e.attributes is not None
        ]
        for span in (first, second)
    ]
    assert [code for code, _ in hints[0]] == ["input-key-prefix"]
    assert hints[0][0][1].startswith("the platform rejected 'inputData.customerId'")
    assert "did you mean 'Flow.customerId'?" in str(hints[0][0][1])
    assert [code for code, _ in hints[1]] == ["input-nested"]
    assert str(hints[1][0][1]).startswith("the platform rejected 'inputData.Flow'")
    assert "'Flow.isVip'" in str(hints[1][0][1])
