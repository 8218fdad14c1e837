"""``python -m benchmarks [--smoke] [--report PATH] [--only N,...]``.

The full run writes ``benchmarks/REPORT.md``. ``--smoke`` runs every scenario with tiny sizes
(seconds) and writes nothing unless ``--report`` is given: it only proves the benchmarks work.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from . import _bounds, _breakdown, _cardinality, _loopback, _memory, _percall
from ._report import Section, Table

HERE = Path(__file__).resolve().parent
FINDINGS = HERE / "findings.md"


@dataclass(frozen=True)
class Sizes:
    percall_rounds: int
    percall_batch: int
    loop_rounds: int
    loop_batch: int
    mem_success: int
    mem_error: int
    mem_runs: int
    flows: int
    max_flows: int
    expo_repeats: int
    details: int
    body_bytes: int
    keys: int
    hang_calls: int


FULL = Sizes(
    percall_rounds=31,
    percall_batch=200,
    loop_rounds=15,
    loop_batch=400,
    mem_success=200 * 2**20,
    mem_error=50 * 2**20,
    mem_runs=3,
    flows=100_000,
    max_flows=200,
    expo_repeats=31,
    details=100_000,
    body_bytes=10_000_000,
    keys=200_000,
    hang_calls=30,
)
SMOKE = Sizes(
    percall_rounds=2,
    percall_batch=5,
    loop_rounds=2,
    loop_batch=16,
    mem_success=2 * 2**20,
    mem_error=1 * 2**20,
    mem_runs=1,
    flows=500,
    max_flows=50,
    expo_repeats=2,
    details=1_000,
    body_bytes=100_000,
    keys=2_000,
    hang_calls=3,
)


def _scenarios(sizes: Sizes) -> dict[str, object]:
    s = sizes
    return {
        "1": lambda: _percall.success_path(rounds=s.percall_rounds, batch=s.percall_batch),
        "2": lambda: _percall.error_path(rounds=s.percall_rounds, batch=s.percall_batch),
        "3": lambda: _loopback.throughput(rounds=s.loop_rounds, batch=s.loop_batch),
        "4": lambda: _memory.memory(
            success_size=s.mem_success, error_size=s.mem_error, runs=s.mem_runs
        ),
        "5": lambda: _cardinality.cardinality(
            flows=s.flows, max_flows=s.max_flows, repeats=s.expo_repeats
        ),
        "6": lambda: _bounds.bounds(
            details=s.details,
            body_bytes=s.body_bytes,
            keys=s.keys,
            calls=s.hang_calls,
            repeats=s.expo_repeats,
        ),
        "7": lambda: _breakdown.breakdown(rounds=s.percall_rounds, batch=s.percall_batch),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], cwd=HERE, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{rev}{' + uncommitted changes in src/' if dirty else ''}" if rev else "unknown"


def _machine(load_before: tuple[float, ...], load_after: tuple[float, ...]) -> Table:
    table = Table(["", ""], title="Machine")
    table.rows += [
        ["CPU", f"{_cpu_model()}, {os.cpu_count()} cores visible"],
        ["load average (1 min) before / after", f"{load_before[0]:.2f} / {load_after[0]:.2f}"],
        ["OS", platform.platform()],
        ["Python", f"{platform.python_implementation()} {platform.python_version()}"],
        ["flowscope", f"{_version('flowscope')} ({_git()})"],
    ]
    for dist in (
        "httpx",
        "httpcore",
        "opentelemetry-sdk",
        "opentelemetry-instrumentation-httpx",
        "prometheus-client",
        "logfire",
    ):
        table.rows.append([dist, _version(dist)])
    return table


def _render(sections: list[Section], machine: Table, elapsed: float, argv: list[str]) -> str:
    targets = [t for s in sections for t in s.targets]
    summary = Table(["target", "limit", "figure", "status"], title="Targets")
    summary.rows += [t.row() for t in targets]
    met = sum(t.met for t in targets)
    parts = [
        "# flowscope benchmarks",
        f"Generated {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC in {elapsed:,.0f} s by "
        f"`{' '.join(['python -m benchmarks', *argv])}` (from the repository root: "
        "`make bench`, or `.venv/bin/python -m benchmarks`).",
        "The machine is shared with other work running at the same time. Contenders therefore "
        "run in short interleaved rounds (the starting contender rotates each round), each "
        "figure is a median over rounds, and ratios are medians of per-round ratios between "
        "contenders that ran back to back. Absolute times are those of this (slow, busy) "
        "machine; the ratios are the result.",
        f"{met} of {len(targets)} targets met.",
        summary.markdown(),
        machine.markdown(),
        *(s.markdown() for s in sections),
    ]
    if FINDINGS.exists():
        parts.append(FINDINGS.read_text().strip())
    return "\n\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; write no report")
    parser.add_argument("--report", type=Path, help="where to write the report")
    parser.add_argument("--only", help="comma-separated scenario numbers, e.g. 1,2")
    args = parser.parse_args(argv)
    sizes = SMOKE if args.smoke else FULL
    report = args.report if args.report else (None if args.smoke else HERE / "REPORT.md")
    chosen = args.only.split(",") if args.only else None

    started = time.perf_counter()
    load_before = os.getloadavg()
    sections: list[Section] = []
    for key, run in _scenarios(sizes).items():
        if chosen is not None and key not in chosen:
            continue
        t0 = time.perf_counter()
        section = run()  # type: ignore[operator]
        sections.append(section)
        failed = [t.name for t in section.targets if not t.met]
        print(
            f"{section.title}: {time.perf_counter() - t0:.1f} s"
            + (f"; targets not met: {', '.join(failed)}" if failed else ""),
            file=sys.stderr,
        )
    elapsed = time.perf_counter() - started
    text = _render(
        sections, _machine(load_before, os.getloadavg()), elapsed, list(argv or sys.argv[1:])
    )
    if report is not None:
        report.write_text(text)
        print(f"wrote {report}", file=sys.stderr)
    elif not args.smoke:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
