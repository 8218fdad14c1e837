"""Scenario 4: peak RSS while streaming big bodies, each run in a fresh process.

A fresh process per run gives a clean high-water mark: ``ru_maxrss`` is read before and after
the stream, and the growth is what streaming the body cost. Every child imports the same
modules whatever it measures, so the contenders start from the same baseline.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import statistics
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
    else:  # "bare", or "bare-read": the control that reads the whole body into memory
        transport = httpx.HTTPTransport()
    path = "/api/v2/flows/executions/e-1"
    with httpx.Client(transport=transport, base_url=base) as client:
        # Warm-up: connection, imports on first use, first-call paths.
        client.get(path, params={"status": status, "size": 4096})
        gc.collect()
        # The RSS now, not the high-water mark: imports may have peaked higher than streaming.
        before = _current_rss()
        proc.keep_attributes = True
        seen = 0
        params = {"status": status, "size": size}
        if kind == "bare-read":
            response = client.get(path, params=params)
            seen = len(response.content)
        else:
            with client.stream("GET", path, params=params) as response:
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


def _current_rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


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
    return max(0, int(result["after"]) - int(result["before"]))


def memory(*, success_size: int, error_size: int, runs: int) -> Section:
    from flowscope import FlowScopeConfig

    from ._loopback import loopback_server

    limit = FlowScopeConfig().capture_limit_bytes
    section = Section(
        "4. Memory",
        "Peak RSS growth while the caller streams one body (`client.stream(...)`, "
        "`iter_bytes()`) from a loopback server: `ru_maxrss` after the stream minus the RSS "
        "just before it, in a fresh process per run "
        f"({runs} runs per contender, alternating; median). flowscope keeps its defaults "
        f"(capture limit {limit:,} bytes), spans sampled. The control reads the whole error "
        "body into memory (`response.content`) and shows the method sees what a body costs.",
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
            bare = statistics.median(growth["bare"])
            fs = statistics.median(growth["flowscope"])
            added = fs - bare
            table.rows.append([label, mib(bare), mib(fs), mib(added)])
            if status >= 400:
                control = _run("bare-read", base, status, size)
                table.rows.append(
                    [f"control: {label}, read whole, bare httpx", mib(control), "", ""]
                )
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
