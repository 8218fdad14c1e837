"""Scenario 5: series count and exposition time after a flood of distinct flow ids.

Records go straight to :class:`FlowMetrics` (the transport's metrics sink): label bounding
lives there, and 100,000 calls through the whole stack would measure the stack again, not
the series.
"""

from __future__ import annotations

import contextlib
import cProfile
import pstats
import statistics
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import prometheus_client
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from flowscope import CallRecord, FlowMetrics, FlowScopeTransport, RecordedError, serve_metrics

from ._common import clock
from ._report import Section, Table, Target, ms


def _records(n: int) -> Iterator[CallRecord]:
    """Mostly successes; every tenth a 400 naming a field and an error code of its own."""
    for i in range(n):
        trace_id = f"{i + 1:032x}"
        span_id = f"{i + 1:016x}"
        base = {
            "operation": "launch",
            "template": "/api/v2/flows/executions",
            "method": "POST",
            "flow_id": f"flow-{i:06d}",
            "flow_name": None,
            "flow_version": None,
            "execution_id": None,
            "url": "https://api.mypurecloud.com/api/v2/flows/executions",
            "duration_s": 0.05 + (i % 7) * 0.1,
            "trace_id": trace_id,
            "span_id": span_id,
        }
        if i % 10:
            yield CallRecord(status_code=200, outcome="success", **base)  # type: ignore[arg-type]
        else:
            error = RecordedError(
                kind="genesys",
                code=f"invalid.value.{i}",
                message="bad",
                fields=(f"inputData.Flow.field{i}",),
            )
            yield CallRecord(status_code=400, outcome="client_error", error=error, **base)  # type: ignore[arg-type]


def _series(registry: CollectorRegistry) -> tuple[int, int]:
    """(samples exposed, distinct values of the ``flow`` label)."""
    samples = 0
    flows: set[str] = set()
    for family in registry.collect():
        for sample in family.samples:
            samples += 1
            if "flow" in sample.labels:
                flows.add(sample.labels["flow"])
    return samples, len(flows)


def _where(path: str, name: str) -> str:
    """``prometheus_client.openmetrics.exposition._escape`` from a profiled code location."""
    if path == "~":
        return name  # a built-in: "<method 'replace' of 'str' objects>"
    parts = Path(path).with_suffix("").parts
    for anchor in ("site-packages", "src"):
        if anchor in parts:
            parts = parts[parts.index(anchor) + 1 :]
            break
    return ".".join((*parts[-3:], name))


def _exposition_profile(registry: CollectorRegistry, top: int = 6) -> Table:
    """cProfile of one OpenMetrics exposition: whose code the time is spent in."""
    profile = cProfile.Profile()
    profile.enable()
    generate_openmetrics(registry)
    profile.disable()
    stats: dict[Any, Any] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in stats.values())
    table = Table(
        ["function (own time)", "calls", "ms", "share"],
        title="One OpenMetrics exposition under cProfile, top functions by own time",
    )
    for (path, _line, name), (_cc, calls, own, _cum, _callers) in sorted(
        stats.items(), key=lambda item: -item[1][2]
    )[:top]:
        share = f"{own / total:.0%}" if total else "-"
        table.rows.append([f"`{_where(path, name)}`", f"{calls:,}", ms(own), share])
    ours = sum(entry[2] for key, entry in stats.items() if "/flowscope/" in key[0])
    table.rows.append(["all of flowscope's own code", "", ms(ours), f"{ours / total:.0%}"])
    return table


def cardinality(
    *, flows: int, max_flows: int, repeats: int, budget_flows: int, budget_hosts: int
) -> Section:
    registry = CollectorRegistry()
    metrics = FlowMetrics(registry, max_flows=max_flows)
    t0 = clock()
    for record in _records(flows):
        metrics.observe(record)
    feed = clock() - t0
    samples, flow_values = _series(registry)
    overflow = registry.get_sample_value("flowscope_label_overflow_total", {"label": "flow"}) or 0

    def timed(fn: object) -> float:
        times = []
        for _ in range(repeats):
            t = clock()
            fn()  # type: ignore[operator]
            times.append(clock() - t)
        return statistics.median(times)

    text = timed(lambda: generate_latest(registry))
    openmetrics = timed(lambda: generate_openmetrics(registry))
    collect = timed(lambda: [family.samples for family in registry.collect()])
    # A process-wide switch of prometheus-client, for users who do not want `_created` series.
    prometheus_client.disable_created_metrics()
    try:
        lean_samples, _ = _series(registry)
        lean_text = timed(lambda: generate_latest(registry))
    finally:
        prometheus_client.enable_created_metrics()
    server, thread = serve_metrics(0, "127.0.0.1", registry=registry)
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"

        def scrape() -> None:
            with urllib.request.urlopen(url, timeout=10) as r:
                r.read()

        http = timed(scrape)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)

    section = Section(
        "5. Cardinality",
        f"{flows:,} calls, each with a distinct flow id (every tenth a 400 with its own error "
        f"code and field, all with exemplars), into `FlowMetrics(max_flows={max_flows})` "
        f"(defaults for fields and error codes); exposition timed {repeats} times, median.",
    )
    table = Table(["measure", "value"])
    table.rows += [
        ["distinct `flow` label values", f"{flow_values:,} (limit {max_flows} + `__other__`)"],
        ['folds counted in `flowscope_label_overflow_total{label="flow"}`', f"{overflow:,.0f}"],
        ["samples exposed (all series and buckets; no `_created`)", f"{samples:,}"],
        ["feeding the records", f"{feed / flows * 1e6:,.1f} µs per call"],
        ["building the samples (`registry.collect()`)", f"{ms(collect)} ms"],
        ["exposition, Prometheus text (`generate_latest`)", f"{ms(text)} ms"],
        ["exposition, OpenMetrics with exemplars", f"{ms(openmetrics)} ms"],
        ["`GET /metrics` over loopback (`serve_metrics`)", f"{ms(http)} ms"],
        [
            "with `prometheus_client.disable_created_metrics()`: samples, text exposition",
            f"{lean_samples:,}, {ms(lean_text)} ms",
        ],
    ]
    section.tables.append(table)
    section.tables.append(_exposition_profile(registry))
    bounded = flow_values <= max_flows + 1
    section.targets.append(
        Target(
            "cardinality: flow label bounded",
            f"{flow_values:,} values",
            f"<= {max_flows + 1}",
            bounded,
        )
    )
    per_metric, timing, budget = series_budget(
        flows=budget_flows, hosts=budget_hosts, repeats=repeats
    )
    section.tables += [per_metric, timing]
    section.targets.append(budget)
    section.notes.append(
        "Series budget: every flow id goes through launch (POST), get_execution and get_flow "
        "(GET), each answered once with each of 13 statuses (with its error code; a 429 with "
        "Retry-After, a 400 naming a field of its own) and failed once with each of 4 transport "
        "exceptions; get_execution also answers each terminal execution status; token calls "
        "get the same. Every answer carries the rate-limit headers. More flow ids than "
        "`max_flows` and more hosts than `max_hosts` reach every bound. Before the budget work "
        "the same traffic exported 57,768 series (of which 14,356 `_created`)."
    )
    worst = max(text, openmetrics, http)
    section.targets.append(
        Target(
            "cardinality: exposition time (worst of the three)",
            f"{ms(worst)} ms",
            "< 50 ms",
            worst < 0.050,
        )
    )
    return section


# -- the series budget: the worst case one process exports at defaults -----------------------------

#: The statuses the platform answers flow calls with (SPEC §9), each with its error code.
STATUSES: dict[int, str | None] = {
    200: None,
    400: "bad.request",
    401: "bad.credentials",
    403: "missing.permissions",
    404: "not.found",
    408: "request.timeout",
    410: "architect.flow.deleted",
    413: "request.entity.too.large",
    415: "unsupported.media.type",
    429: "too.many.requests",
    500: "internal.server.error",
    503: "service.unavailable",
    504: "request.timeout",
}
#: The ways a flow call fails without a response, as httpx raises them.
TRANSPORT_FAILURES: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.ReadTimeout,
    httpx.RemoteProtocolError,
)
#: Terminal execution statuses a get_execution answer can report (SPEC §10).
EXECUTION_STATUSES = ("COMPLETED", "FAILED", "ERROR", "TERMINATED")
BUDGET = 20_000


def platform_answer(request: httpx.Request) -> httpx.Response:
    """Answers as the request's ``x-answer`` header says, with the rate-limit headers."""
    answer = request.headers["x-answer"]
    if answer.startswith("raise:"):
        raise TRANSPORT_FAILURES[int(answer[6:])]("failed", request=request)
    status, _, detail = answer.partition(":")
    code = int(status)
    headers = {
        "inin-ratelimit-allowed": "3000",
        "inin-ratelimit-count": "1",
        "inin-ratelimit-reset": "60",
    }
    if code == 429:
        headers["Retry-After"] = "30"
    if code == 200:
        flow_id = request.headers["x-flow"]
        body: dict[str, Any] = {
            "id": "exec-1",
            "flowVersion": {"id": "1", "selfUri": f"/api/v2/flows/{flow_id}/versions/1"},
        }
        if detail:  # a get_execution answer in a terminal status
            body |= {
                "status": detail,
                "dateLaunched": "2026-01-01T00:00:00.000Z",
                "dateCompleted": "2026-01-01T00:00:02.000Z",
            }
            if detail in ("FAILED", "ERROR"):
                body["flowErrorInfo"] = {"code": "flow.failed", "message": "failed"}
        return httpx.Response(200, headers=headers, json=body)
    error: dict[str, Any] = {"code": STATUSES[code], "message": "refused", "status": code}
    if code == 400:  # every flow names a field of its own, the field bound is reached
        error["details"] = [{"fieldName": f"inputData.Flow.field{request.headers['x-flow']}"}]
    return httpx.Response(code, headers=headers, json=error)


def worst_case_traffic(client: httpx.Client, flows: int, hosts: int) -> int:
    """Every flow, through every operation with its method, gets every status and every
    transport failure; get_execution also reports every terminal status. Calls spread over
    ``hosts`` API hosts, and token calls go to their login host. Returns the calls made."""
    answers = [str(code) for code in STATUSES] + [
        f"raise:{i}" for i in range(len(TRANSPORT_FAILURES))
    ]
    calls = 0

    def send(method: str, url: str, flow: str, answer: str, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        headers = {"x-answer": answer, "x-flow": flow}
        with contextlib.suppress(httpx.TransportError):
            client.request(method, url, headers=headers, **kwargs)

    for i in range(flows):
        flow = f"{i:04d}-flow"
        api = f"https://api.region{i % hosts}.test"
        for answer in answers:
            send("POST", f"{api}/api/v2/flows/executions", flow, answer, json={"flowId": flow})
            send("GET", f"{api}/api/v2/flows/executions/exec-{i}", flow, answer)
            send("GET", f"{api}/api/v2/flows/{flow}", flow, answer)
        for status in EXECUTION_STATUSES:  # one execution per status: each counts once
            send("GET", f"{api}/api/v2/flows/executions/exec-{i}-{status}", flow, f"200:{status}")
    for answer in answers:
        send("POST", "https://login.region0.test/oauth/token", "-", answer, data={"a": "b"})
    return calls


def exposed_series(registry: CollectorRegistry) -> dict[str, int]:
    """Series per metric family, as Prometheus would store them from the text exposition."""
    counts: dict[str, int] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        if family.samples:
            counts[family.name] = len(family.samples)
    return counts


def series_budget(*, flows: int, hosts: int, repeats: int) -> tuple[Table, Table, Target]:
    """The worst case at defaults, through the public API: a transport into ``FlowMetrics()``."""
    registry = CollectorRegistry()
    metrics = FlowMetrics(registry)
    transport = FlowScopeTransport(
        httpx.MockTransport(platform_answer), metrics=metrics, tracer_provider=TracerProvider()
    )
    with httpx.Client(transport=transport) as client:
        t0 = clock()
        calls = worst_case_traffic(client, flows, hosts)
        drive = clock() - t0
    counts = exposed_series(registry)
    total = sum(counts.values())
    times = []
    for _ in range(repeats):
        t = clock()
        generate_latest(registry)
        times.append(clock() - t)
    om_times = []
    for _ in range(repeats):
        t = clock()
        generate_openmetrics(registry)
        om_times.append(clock() - t)

    per_metric = Table(
        ["metric", "series"],
        title=(
            f"Series budget: {calls:,} calls ({flows} flow ids, {hosts} API hosts) into "
            "`FlowMetrics()` at its defaults"
        ),
    )
    for name, count in sorted(counts.items(), key=lambda item: -item[1]):
        per_metric.rows.append([f"`{name}`", f"{count:,}"])
    per_metric.rows.append(["**total**", f"**{total:,}**"])
    timing = Table(["measure", "value"], title="Series budget: exposing the worst case")
    timing.rows += [
        [
            "driving the calls through `FlowScopeTransport`",
            f"{drive / calls * 1e6:,.0f} µs per call",
        ],
        [
            "exposition, Prometheus text (`generate_latest`), median",
            f"{ms(statistics.median(times))} ms",
        ],
        ["exposition, OpenMetrics with exemplars, median", f"{ms(statistics.median(om_times))} ms"],
    ]
    target = Target(
        "series budget: worst case per process at defaults",
        f"{total:,} series",
        f"<= {BUDGET:,}",
        total <= BUDGET,
    )
    return per_metric, timing, target
