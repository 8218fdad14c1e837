"""Scenario 5: series count and exposition time after a flood of distinct flow ids.

Records go straight to :class:`FlowMetrics` (the transport's metrics sink): label bounding
lives there, and 100,000 calls through the whole stack would measure the stack again, not
the series.
"""

from __future__ import annotations

import cProfile
import pstats
import statistics
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from flowscope import CallRecord, FlowMetrics, RecordedError, serve_metrics

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


def cardinality(*, flows: int, max_flows: int, repeats: int) -> Section:
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
        ["samples exposed (all series, buckets, `_created`)", f"{samples:,}"],
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
