"""Nothing lost: the instrumented client returns exactly what the bare client returns.

For every response in the corpus (encodings, sizes, broken and slow servers, redirects) the
same request goes through a bare client and an instrumented one, in sync, async and streaming
use, and the two outcomes must be equal: status, headers, bytes, redirect history, or the same
exception type and message. Every case is a flow call, so flowscope reads and replays error
bodies while the span is open.

Large bodies are 8 MiB by default and 50 MiB with ``FLOWSCOPE_SOAK=1``.
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import brotli
import httpx
import pytest
from prometheus_client import CollectorRegistry

from flowscope import AsyncFlowScopeTransport, FlowMetrics, FlowScopeTransport

from .conftest import Spans, report_lines
from .servers import Reply, ScriptedServer

SOAK = os.environ.get("FLOWSCOPE_SOAK") == "1"
MiB = 1024 * 1024
LARGE = (50 if SOAK else 8) * MiB

LAUNCH = "/api/v2/flows/executions"
FLOW_ID = "6e1a4b2c-0c7d-4d59-9f6e-2b0a1d2f3c4d"
PAYLOAD = {"flowId": FLOW_ID, "inputData": {"Flow.customerId": "c-42"}}

JSON = ("Content-Type", "application/json")
GENESYS_400 = json.dumps(
    {
        "message": "Invalid input",
        "code": "bad.request",
        "status": 400,
        "details": [{"errorCode": "UNRECOGNIZED_FIELD", "fieldName": "data"}],
    }
).encode()


def _binary(size: int) -> bytes:
    # Every byte value, in an order that is not a simple pattern, without spending CPU on a PRNG.
    block = bytes((i * 167 + 13) % 256 for i in range(4096))
    return (block * (size // len(block) + 1))[:size]


def _large_json(size: int) -> bytes:
    head = b'{"code": "bad.request", "message": "'
    tail = b'", "status": 400}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


@dataclass
class Case:
    replies: dict[str, Reply]
    #: Client options (timeouts, redirects).
    client: dict[str, Any] = field(default_factory=dict)
    #: Spans the instrumented call makes (one per hop).
    spans: int = 1


def _at_launch(reply: Reply, **client: Any) -> Case:
    return Case({LAUNCH: reply}, client)


def _corpus() -> dict[str, Case]:
    nested_objects = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
    nested_arrays = b"[" * 10_000 + b"]" * 10_000
    html = (
        b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
        b"<body><h1>Bad Gateway</h1><p>nginx</p></body></html>"
    )
    return {
        "gzip-400": _at_launch(
            Reply(400, [JSON, ("Content-Encoding", "gzip")], gzip.compress(GENESYS_400))
        ),
        "gzip-200": _at_launch(
            Reply(200, [JSON, ("Content-Encoding", "gzip")], gzip.compress(b'{"id": "e-1"}'))
        ),
        "deflate-400": _at_launch(
            Reply(400, [JSON, ("Content-Encoding", "deflate")], zlib.compress(GENESYS_400))
        ),
        "br-500": _at_launch(
            Reply(500, [JSON, ("Content-Encoding", "br")], brotli.compress(GENESYS_400))
        ),
        "gzip-large-400": _at_launch(
            Reply(
                400,
                [JSON, ("Content-Encoding", "gzip")],
                gzip.compress(_large_json(LARGE), compresslevel=1),
            )
        ),
        "chunked-500": _at_launch(
            Reply(
                500, [JSON], [GENESYS_400[:10], GENESYS_400[10:50], GENESYS_400[50:]], chunked=True
            )
        ),
        "chunked-large-503": _at_launch(
            Reply(503, [JSON], [_binary(MiB)] * (LARGE // MiB), chunked=True)
        ),
        "empty-400": _at_launch(Reply(400, [JSON], b"")),
        "empty-200": _at_launch(Reply(200, [JSON], b"")),
        "empty-chunked-404": _at_launch(Reply(404, [JSON], [], chunked=True)),
        "large-200": _at_launch(
            Reply(200, [("Content-Type", "application/octet-stream")], _binary(LARGE))
        ),
        "large-json-400": _at_launch(Reply(400, [JSON], _large_json(LARGE))),
        "invalid-utf8-400": _at_launch(Reply(400, [JSON], b'{"message": "\xff\xfe\x80 \xc3("}')),
        "invalid-utf8-text-500": _at_launch(
            Reply(500, [("Content-Type", "text/plain; charset=utf-8")], b"\xc3\x28\xa0\xa1 oops")
        ),
        "nested-objects-400": _at_launch(Reply(400, [JSON], nested_objects)),
        "nested-arrays-400": _at_launch(Reply(400, [JSON], nested_arrays)),
        "string-10mb-400": _at_launch(Reply(400, [JSON], _large_json(10 * 1000 * 1000))),
        "html-502": _at_launch(Reply(502, [("Content-Type", "text/html")], html)),
        "binary-500": _at_launch(
            Reply(500, [("Content-Type", "application/octet-stream")], _binary(100_000))
        ),
        "binary-claims-json-400": _at_launch(Reply(400, [JSON], _binary(5000))),
        "cut-inside-capture-400": _at_launch(Reply(400, [JSON], _large_json(5000), cut_after=100)),
        "cut-after-capture-400": _at_launch(
            Reply(400, [JSON], _large_json(MiB), cut_after=300_000)
        ),
        "cut-chunked-500": _at_launch(
            Reply(500, [JSON], [b"x" * 1000] * 200, chunked=True, cut_after=150_000)
        ),
        "cut-200": _at_launch(
            Reply(200, [("Content-Type", "application/octet-stream")], _binary(MiB), cut_after=1000)
        ),
        "slow-headers-400": _at_launch(
            Reply(400, [JSON], GENESYS_400, delay=0.6), timeout=httpx.Timeout(5.0, read=0.2)
        ),
        "slow-body-400": _at_launch(
            Reply(400, [JSON], [b'{"code":', b' "bad.request"}'], chunked=True, chunk_delay=0.6),
            timeout=httpx.Timeout(5.0, read=0.2),
        ),
        "redirect-followed": Case(
            {
                LAUNCH: Reply(307, [("Location", "/api/v2/flows/executions/moved")]),
                f"{LAUNCH}/moved": Reply(400, [JSON], GENESYS_400),
            },
            {"follow_redirects": True},
            spans=2,
        ),
        "redirect-303-to-get": Case(
            {
                LAUNCH: Reply(303, [("Location", f"{LAUNCH}/exec-1")]),
                f"{LAUNCH}/exec-1": Reply(404, [JSON], b'{"code": "not.found"}'),
            },
            {"follow_redirects": True},
            spans=2,
        ),
        "redirect-not-followed": _at_launch(
            Reply(302, [("Location", "https://elsewhere.invalid/")], b"moved"),
            follow_redirects=False,
        ),
    }


CORPUS = _corpus()


class Figures:
    comparisons = 0
    bytes_compared = 0


@pytest.fixture(scope="module", autouse=True)
def report_figures(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if Figures.comparisons:
        report_lines(
            request,
            [
                f"\ndifferential: {Figures.comparisons} comparisons, "
                f"{Figures.bytes_compared:,} body bytes compared"
            ],
        )


Outcome = tuple[Any, ...]


def _response(response: httpx.Response, body: bytes) -> Outcome:
    return (
        response.status_code,
        list(response.headers.multi_items()),
        body,
        [(r.status_code, str(r.url)) for r in response.history],
        str(response.url),
    )


def _error(exc: Exception) -> Outcome:
    return ("raised", type(exc), str(exc))


def call_sync(client: httpx.Client, streaming: bool) -> Outcome:
    try:
        if streaming:
            with client.stream("POST", LAUNCH, json=PAYLOAD) as response:
                return _response(response, b"".join(response.iter_raw(65536)))
        response = client.post(LAUNCH, json=PAYLOAD)
        return _response(response, response.content)
    except Exception as exc:
        return _error(exc)


async def call_async(client: httpx.AsyncClient, streaming: bool) -> Outcome:
    try:
        if streaming:
            async with client.stream("POST", LAUNCH, json=PAYLOAD) as response:
                chunks = [chunk async for chunk in response.aiter_bytes()]
                return _response(response, b"".join(chunks))
        response = await client.post(LAUNCH, json=PAYLOAD)
        return _response(response, response.content)
    except Exception as exc:
        return _error(exc)


def _same(bare: Outcome, got: Outcome) -> None:
    if bare[0] != "raised":
        Figures.bytes_compared += len(bare[2])
    Figures.comparisons += 1
    if got != bare:  # a readable message without dumping megabytes
        summary = [
            (o[0], o[1], len(o[2]) if isinstance(o[2], bytes) else o[2]) for o in (bare, got)
        ]
        raise AssertionError(f"instrumented {summary[1]} != bare {summary[0]}")


@pytest.fixture
def corpus_server(request: pytest.FixtureRequest, server: ScriptedServer) -> Iterator[Case]:
    case = CORPUS[request.param]
    server.replies.update(case.replies)
    yield case


@pytest.fixture
def registry_metrics(registry: CollectorRegistry) -> FlowMetrics:
    return FlowMetrics(registry)


def _accounted(spans: Spans, case: Case, calls: int) -> None:
    assert len(spans.all()) == case.spans * calls


CASES = sorted(CORPUS)


@pytest.mark.parametrize("streaming", [False, True], ids=["read", "stream"])
@pytest.mark.parametrize("corpus_server", CASES, indirect=True)
def test_sync_client_gets_exactly_what_the_bare_client_gets(
    corpus_server: Case,
    streaming: bool,
    server: ScriptedServer,
    spans: Spans,
    registry_metrics: FlowMetrics,
) -> None:
    options = {"base_url": server.url, **corpus_server.client}
    with httpx.Client(**options) as bare:
        expected = call_sync(bare, streaming)
    transport = FlowScopeTransport(tracer_provider=spans.provider, metrics=registry_metrics)
    with httpx.Client(transport=transport, **options) as client:
        _same(expected, call_sync(client, streaming))
    _accounted(spans, corpus_server, 1)


@pytest.mark.parametrize("streaming", [False, True], ids=["read", "stream"])
@pytest.mark.parametrize("corpus_server", CASES, indirect=True)
async def test_async_client_gets_exactly_what_the_bare_client_gets(
    corpus_server: Case,
    streaming: bool,
    server: ScriptedServer,
    spans: Spans,
    registry_metrics: FlowMetrics,
) -> None:
    options = {"base_url": server.url, **corpus_server.client}
    async with httpx.AsyncClient(**options) as bare:
        expected = await call_async(bare, streaming)
    transport = AsyncFlowScopeTransport(tracer_provider=spans.provider, metrics=registry_metrics)
    async with httpx.AsyncClient(transport=transport, **options) as client:
        _same(expected, await call_async(client, streaming))
    _accounted(spans, corpus_server, 1)


def test_the_corpus_really_exercises_errors_and_exceptions(server: ScriptedServer) -> None:
    """Guard against a corpus that silently stopped covering what it claims to."""
    raised, statuses = set(), set()
    for name, case in CORPUS.items():
        server.replies.update(case.replies)
        with httpx.Client(base_url=server.url, **case.client) as bare:
            outcome = call_sync(bare, streaming=False)
        if outcome[0] == "raised":
            raised.add((name.split("-")[0], outcome[1].__name__))
        else:
            statuses.add(outcome[0])
        server.replies.clear()
    assert {("cut", "RemoteProtocolError"), ("slow", "ReadTimeout")} <= raised
    assert {200, 302, 400, 404, 500, 502, 503} <= statuses


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def test_a_streamed_upload_is_sent_unchanged(
    server: ScriptedServer, spans: Spans, registry_metrics: FlowMetrics
) -> None:
    body = json.dumps(PAYLOAD).encode()
    server.replies[LAUNCH] = Reply(400, [JSON], GENESYS_400)
    transport = AsyncFlowScopeTransport(tracer_provider=spans.provider, metrics=registry_metrics)
    async with httpx.AsyncClient(base_url=server.url, transport=transport) as client:
        response = await client.post(
            LAUNCH, content=_chunks(body, 7), headers={"Content-Length": str(len(body))}
        )
    assert response.content == GENESYS_400
    assert server.seen[-1][3] == body
    Figures.comparisons += 1
    Figures.bytes_compared += len(body) + len(GENESYS_400)
