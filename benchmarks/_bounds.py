"""Scenario 6: hostile sizes in wall-clock time.

The tests check that this work grows at most linearly (or not at all) with the input, against a
baseline measured in the same test; the absolute times, which depend on the machine and its
load, are measured here instead.
"""

from __future__ import annotations

import json
import socket
import statistics
import threading
from collections.abc import Callable

import httpx
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from prometheus_client import CollectorRegistry

from flowscope import FlowMetrics, FlowScopeTransport, parse_error_body
from flowscope._hints import diagnose_payload

from ._common import clock
from ._report import Section, Table, Target, ms

JSON = {"content-type": "application/json"}
ERROR = json.dumps({"code": "bad.request", "message": "Invalid input"}).encode()


def _median(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = clock()
        run()
        times.append(clock() - t)
    return statistics.median(times)


def _details(count: int) -> bytes:
    details = [{"errorCode": "invalid.value", "fieldName": f"field{i}"} for i in range(count)]
    return json.dumps({"code": "bad.request", "message": "m", "details": details}).encode()


def _calls_while_the_collector_hangs(calls: int) -> float:
    """Seconds for ``calls`` instrumented calls while the span collector never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces", timeout=30)
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=10))
    transport = FlowScopeTransport(
        httpx.MockTransport(lambda request: httpx.Response(400, content=ERROR, headers=JSON)),
        tracer_provider=provider,
        metrics=FlowMetrics(CollectorRegistry()),
    )
    try:
        with httpx.Client(transport=transport, base_url="http://127.0.0.1:9") as client:
            client.post("/api/v2/flows/executions", json={"flowId": "f"})
            t = clock()
            for _ in range(calls):
                client.post("/api/v2/flows/executions", json={"flowId": "f"})
            return clock() - t
    finally:
        stop.set()
        thread.join(5)
        for conn in accepted:  # ends the stuck export at once
            conn.close()
        listener.close()
        exporter.shutdown()
        provider.shutdown()


def bounds(*, details: int, body_bytes: int, keys: int, calls: int, repeats: int) -> Section:
    detail_body = _details(details)
    text_body = b"a" * body_bytes
    json_body = b'{"code": "bad.request", "message": "%s"}' % (b"m" * body_bytes)
    html_body = b"<" * body_bytes
    payload = {
        "flowId": "a",
        "inputData": {f"key{i}": "v" for i in range(keys)},
        **{f"root{i}": 1 for i in range(keys)},
    }
    rows = [
        (
            f"parse an error body with {details:,} details",
            _median(lambda: parse_error_body(400, JSON, detail_body), repeats),
            1.0,
        ),
        (
            f"parse {body_bytes / 1e6:g} MB of text, JSON and HTML error bodies",
            _median(
                lambda: (
                    parse_error_body(400, {"content-type": "text/plain"}, text_body),
                    parse_error_body(400, JSON, json_body),
                    parse_error_body(400, {}, html_body),
                ),
                repeats,
            ),
            1.0,
        ),
        (
            f"diagnose a launch body with {keys:,} inputs and {keys:,} root keys",
            _median(lambda: diagnose_payload(payload), repeats),
            1.0,
        ),
        (
            f"{calls} calls while the span collector hangs",
            _calls_while_the_collector_hangs(calls),
            5.0,
        ),
    ]
    section = Section(
        "6. Hostile sizes",
        "Wall-clock times for the inputs the tests check only for linear (or bounded) growth; "
        f"median of {repeats} runs (the hanging collector: one run).",
    )
    table = Table(["work", "time (ms)", "limit (ms)"])
    for name, seconds, limit in rows:
        table.rows.append([name, ms(seconds), ms(limit)])
        section.targets.append(
            Target(
                f"hostile sizes: {name}", f"{ms(seconds)} ms", f"< {ms(limit)} ms", seconds < limit
            )
        )
    section.tables.append(table)
    return section
