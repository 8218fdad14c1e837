"""Scenario 8: memory of the execution store while launches pile up without an outcome.

Every launch through flowscope is remembered until a poll shows how it ended. A batch job that
fires launches and never polls must not grow the process: the store keeps at most
``max_tracked_executions`` (default 10,000) and forgets the oldest, counting each as
``__unobserved__``. Launches go through the whole transport (an in-process platform answers
with a fresh 50-character execution id each time); ``tracemalloc`` measures what stays
allocated once the store is full and again after ten times as many launches.
"""

from __future__ import annotations

import gc
import itertools
import json
import time
import tracemalloc

import httpx
from prometheus_client import CollectorRegistry

from flowscope import FlowMetrics, FlowScopeConfig, FlowScopeTransport

from ._common import API, LAUNCH_BODY, LAUNCH_PATH, REQUEST_HEADERS
from ._report import Section, Table, Target, mib


def _platform() -> httpx.MockTransport:
    ids = itertools.count()

    def answer(request: httpx.Request) -> httpx.Response:
        execution_id = f"{next(ids):050d}"
        body = json.dumps({"id": execution_id, "name": "run"}).encode()
        return httpx.Response(200, headers={"Content-Type": "application/json"}, content=body)

    return httpx.MockTransport(answer)


def _retained() -> int:
    gc.collect()
    current, _ = tracemalloc.get_traced_memory()
    return current


def executions(launches: int, bound: int) -> Section:
    config = FlowScopeConfig(max_tracked_executions=bound)
    registry = CollectorRegistry()
    metrics = FlowMetrics(registry)
    transport = FlowScopeTransport(_platform(), config=config, metrics=metrics)
    body = json.dumps(LAUNCH_BODY).encode()
    headers = REQUEST_HEADERS
    tracemalloc.start()
    try:
        with httpx.Client(transport=transport, base_url=API, headers=headers) as client:
            baseline = _retained()
            started = time.perf_counter()
            sizes: list[tuple[int, int]] = []
            checkpoints = {bound, launches // 2, launches}
            for i in range(1, launches + 1):
                client.post(LAUNCH_PATH, content=body)
                if i in checkpoints:
                    sizes.append((i, _retained() - baseline))
            elapsed = time.perf_counter() - started
            store = transport._pipeline.executions
            kept = len(store)
    finally:
        tracemalloc.stop()
    unobserved = sum(
        s.value
        for family in registry.collect()
        for s in family.samples
        if s.name == "flowscope_executions_total" and s.labels["status"] == "__unobserved__"
    )
    at_bound = dict(sizes)[bound]
    at_end = dict(sizes)[launches]
    table = Table(["launches", "executions remembered", "memory retained"], title="Store")
    for count, size in sizes:
        table.rows.append([f"{count:,}", f"{min(count, bound):,}", mib(size)])
    section = Section(
        "8. Execution store",
        f"{launches:,} launches through `FlowScopeTransport`, none polled, with "
        f"`max_tracked_executions={bound:,}`; `tracemalloc` after a `gc.collect()` "
        f"({elapsed:.1f} s with tracing on).",
        tables=[table],
        notes=[
            f"{kept:,} executions remembered at the end; {int(unobserved):,} counted "
            f"`__unobserved__` (launches - bound = {launches - bound:,}).",
            f"About {at_bound / max(bound, 1):,.0f} bytes per remembered execution.",
        ],
    )
    section.targets.append(
        Target(
            f"memory after {launches:,} launches vs. at the bound ({bound:,})",
            f"{mib(at_end)} vs. {mib(at_bound)}",
            "within 10 %",
            kept == bound and at_end <= at_bound * 1.1,
        )
    )
    return section
