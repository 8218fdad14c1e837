"""Scenario 7: where flowscope's own time goes on one call, step by step.

The steps of the pipeline (the engine's two steps, each sink, the hooks) are timed in place
with ``perf_counter`` around each function, over the same MockTransport calls as scenarios 1
and 2 (sync), beside the OpenTelemetry transport alone. This is the profile behind the
per-call targets: the budget a target leaves against what each step costs. The timers are
removed again before the scenario returns.
"""

from __future__ import annotations

import functools
import logging
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from opentelemetry.instrumentation.httpx import SyncOpenTelemetryTransport
from prometheus_client import CollectorRegistry

import flowscope._engine
import flowscope._metrics
import flowscope._otel
import flowscope._pipeline
import flowscope._redact
import flowscope._transport
from flowscope import FlowMetrics, FlowScopeTransport

from . import _percall
from ._common import BAD_LAUNCH_BODY, LAUNCH_BODY, REQUEST_HEADERS, traced_provider
from ._report import Section, Table, us

# (module or class, attribute, the step's name in the table); order is the table's order.
_STEPS: tuple[tuple[Any, str, str], ...] = (
    (flowscope._engine.Engine, "begin", "engine: begin (route, flow id, what was sent)"),
    (flowscope._engine.Engine, "_observe", "engine: observe (decode, parse the error body once)"),
    (flowscope._engine, "parse_error_body", "  of which the error parser"),
    (flowscope._engine.Engine, "_redact", "engine: redact once, build the CallRecord"),
    (flowscope._redact.Redactor, "json", "  of which the JSON bodies (error and request)"),
    (flowscope._engine.Engine, "_hints", "  of which the hints (diagnose_launch)"),
    (flowscope._pipeline, "write_span", "sink: span attributes and events"),
    (flowscope._metrics.FlowMetrics, "observe", "sink: metrics (with exemplars)"),
    (flowscope._pipeline, "log_failure", "sink: log (one WARNING, a handler attached)"),
    (flowscope._otel, "_response_hook", "OpenTelemetry response hook: span status"),
    (flowscope._transport._Observe, "handle_request", "the inner layer in all (incl. the above)"),
)
_INNER = "the inner layer in all (incl. the above)"


@contextmanager
def _timed_steps() -> Iterator[dict[str, float]]:
    spent: dict[str, float] = {}
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in _STEPS]

    def timer(label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0.0) + time.perf_counter() - start

        return timed

    for (owner, name, label), (_, _, original) in zip(_STEPS, originals, strict=True):
        setattr(owner, name, timer(label, original))
    try:
        yield spent
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


def _client(handler: Callable[[httpx.Request], httpx.Response], flowscope: bool) -> httpx.Client:
    mock = httpx.MockTransport(handler)
    provider = traced_provider()
    if flowscope:
        metrics = FlowMetrics(CollectorRegistry())
        return httpx.Client(
            transport=FlowScopeTransport(mock, tracer_provider=provider, metrics=metrics)
        )
    return httpx.Client(transport=SyncOpenTelemetryTransport(mock, tracer_provider=provider))


def _path(
    handler: Callable[[httpx.Request], httpx.Response], body: Any, *, rounds: int, batch: int
) -> tuple[float, float, dict[str, float]]:
    """(OTel alone µs, flowscope µs, step -> µs per call), medians over paired rounds."""
    with _timed_steps() as spent:
        # Built inside: the pipeline binds its sinks when it is made.
        otel, scoped = _client(handler, False), _client(handler, True)

        def run(client: httpx.Client) -> float:
            start = time.perf_counter()
            for _ in range(batch):
                client.post(_percall.URL, json=body, headers=REQUEST_HEADERS).read()
            return (time.perf_counter() - start) / batch

        run(otel), run(scoped)
        spent.clear()
        alone, with_flowscope = [], []
        for _ in range(rounds):
            alone.append(run(otel))
            with_flowscope.append(run(scoped))
        otel.close()
        scoped.close()
    calls = rounds * batch
    return (
        statistics.median(alone),
        statistics.median(with_flowscope),
        {label: total / calls for label, total in spent.items()},
    )


def breakdown(*, rounds: int, batch: int) -> Section:
    handler = logging.StreamHandler(open("/dev/null", "w"))  # noqa: SIM115 - closed below
    log = logging.getLogger("flowscope")
    log.addHandler(handler)  # the log sink does its full work only when someone listens
    try:
        success = _path(_percall._success, LAUNCH_BODY, rounds=rounds, batch=batch)
        error = _path(_percall._error, BAD_LAUNCH_BODY, rounds=rounds, batch=batch)
    finally:
        log.removeHandler(handler)
        handler.stream.close()

    section = Section(
        "7. Where the time goes",
        "Each step of the pipeline timed in place (`perf_counter` around the function) on the "
        f"sync MockTransport calls of scenarios 1 and 2 ({rounds} rounds of {batch} calls, "
        "paired with the OpenTelemetry transport alone; a log handler attached, so the log "
        "sink does its full work). The timers add a little to every step; the sum is an "
        "upper bound.",
    )
    table = Table(["step (µs per call)", "success (200)", "error (400)"])
    (s_alone, s_scoped, s_steps), (e_alone, e_scoped, e_steps) = success, error
    table.rows.append(["OpenTelemetry transport alone", us(s_alone), us(e_alone)])
    table.rows.append(["flowscope (the same transport, enriched)", us(s_scoped), us(e_scoped)])
    table.rows.append(["what flowscope adds", us(s_scoped - s_alone), us(e_scoped - e_alone)])
    table.rows.append(
        [
            "what the target leaves (1.10x success, 1.50x error)",
            us(0.10 * s_alone),
            us(0.50 * e_alone),
        ]
    )
    for _, _, label in _STEPS:
        table.rows.append([label, us(s_steps.get(label, 0.0)), us(e_steps.get(label, 0.0))])
    outside = [
        (scoped - alone) - steps.get(_INNER, 0.0) for alone, scoped, steps in (success, error)
    ]
    table.rows.append(
        ["outside the inner layer (guarded tracer, hooks, wrapper)", *(us(o) for o in outside)]
    )
    section.tables.append(table)
    return section
