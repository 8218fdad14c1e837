"""Scenario 4: peak RSS while streaming big bodies, each run in a fresh process.

A fresh process per run gives a clean high-water mark: ``ru_maxrss`` is read before and after
the stream, and the growth is what streaming the body cost. Every child imports the same
modules whatever it measures, so the contenders start from the same baseline.
"""

from __future__ import annotations

import gc
import json
import resource
import subprocess
import sys

from ._common import ROOT, child_env
from ._report import Section, Table, Target, mib

_KIB = 1024


def _child(kind: str, base: str, status: int, size: int) -> dict[str, object]:
    import httpx
    from prometheus_client import CollectorRegistry

    from flowscope import FlowMetrics, FlowScopeConfig, FlowScopeTransport

    from ._common import CountingProcessor, traced_provider

    proc = CountingProcessor()
    limit = FlowScopeConfig().capture_limit_bytes
    if kind == "flowscope":
        transport: httpx.BaseTransport = FlowScopeTransport(
            tracer_provider=traced_provider(proc), metrics=FlowMetrics(CollectorRegistry())
        )
    else:
        transport = httpx.HTTPTransport()
    path = "/api/v2/flows/executions/e-1"
    with httpx.Client(transport=transport, base_url=base) as client:
        # Warm-up: connection, imports on first use, first-call paths.
        client.get(path, params={"status": status, "size": 4096})
        gc.collect()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * _KIB
        proc.keep_attributes = True
        seen = 0
        with client.stream("GET", path, params={"status": status, "size": size}) as response:
            for chunk in response.iter_bytes():
                seen += len(chunk)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * _KIB
    assert response.status_code == status and seen == size, (response.status_code, seen)
    events: list[str] = []
    if kind == "flowscope":
        assert proc.last is not None
        events = [e.name for e in proc.last.events]
        if status >= 400:
            assert "flow.error.body" in events, events
    return {"before": before, "after": after, "seen": seen, "events": events, "limit": limit}


def _run(kind: str, base: str, status: int, size: int) -> int:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks._memory", kind, base, str(status), str(size)],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return int(result["after"]) - int(result["before"])


def memory(*, success_size: int, error_size: int, runs: int) -> Section:
    from flowscope import FlowScopeConfig

    from ._loopback import loopback_server

    limit = FlowScopeConfig().capture_limit_bytes
    section = Section(
        "4. Memory",
        "Peak RSS growth while the caller streams one body (`client.stream(...)`, "
        "`iter_bytes()`), measured with `ru_maxrss` in a fresh process per run "
        f"({runs} runs per contender, alternating; median). flowscope keeps its defaults "
        f"(capture limit {limit:,} bytes), spans sampled.",
    )
    table = Table(
        ["body", "bare httpx peak growth (MiB)", "flowscope peak growth (MiB)", "added (MiB)"]
    )
    cases = [
        (f"{success_size / 2**20:,.0f} MiB success (200)", 200, success_size, 5 * 2**20),
        (f"{error_size / 2**20:,.0f} MiB error (400)", 400, error_size, limit + 5 * 2**20),
    ]
    with loopback_server() as base:
        for label, status, size, allowed in cases:
            growth: dict[str, list[int]] = {"bare": [], "flowscope": []}
            for i in range(runs):
                order = ["bare", "flowscope"] if i % 2 == 0 else ["flowscope", "bare"]
                for kind in order:
                    growth[kind].append(_run(kind, base, status, size))
            bare = sorted(growth["bare"])[len(growth["bare"]) // 2]
            fs = sorted(growth["flowscope"])[len(growth["flowscope"]) // 2]
            added = fs - bare
            table.rows.append([label, mib(bare), mib(fs), mib(added)])
            section.targets.append(
                Target(
                    f"memory: {label} adds",
                    f"{mib(added)} MiB",
                    f"< {mib(allowed)} MiB",
                    added < allowed,
                )
            )
    section.tables.append(table)
    section.notes.append(
        "The error body is captured up to the limit while the span is open; the rest streams "
        "through untouched. Success bodies are never held back."
    )
    return section


if __name__ == "__main__":
    _kind, _base, _status, _size = sys.argv[1:5]
    print(json.dumps(_child(_kind, _base, int(_status), int(_size))))
