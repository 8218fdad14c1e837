"""The demo's closing report, built from the records of the calls it made."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING

from flowscope._vocabulary import MISSING, NONE

from ._format import failure_lines, headline

if TYPE_CHECKING:
    from flowscope import CallRecord
    from flowscope.sandbox import SandboxFlow

    from ._traffic import Example, Stats

__all__ = ["CallTally", "FlowRow", "Report", "render_report"]

_TOP = 8


class CallTally:
    """An ``on_record`` sink counting what the report shows: per flow, per error code, per field.

    The same facts as flowscope's metrics, read from the records rather than the registry, so
    the report covers exactly the calls of this run.
    """

    def __init__(self) -> None:
        self.flows: dict[str, FlowRow] = {}
        self.codes: Counter[tuple[str, str]] = Counter()
        self.fields: Counter[str] = Counter()
        self.other_calls: Counter[str] = Counter()
        #: Flow calls that failed (an error status or no response at all).
        self.failed = 0

    def __call__(self, record: CallRecord) -> None:
        status = record.status_code
        if record.outcome != "success":
            self.failed += 1
        if status is None:
            return  # no response: counted as a transport error, not as a request
        if record.operation != "launch":
            self.other_calls[record.operation] += 1
        else:
            row = self.flows.setdefault(record.flow_label, FlowRow(record.flow_label))
            row.launches += 1
            if 200 <= status < 300:
                row.ok += 1
            elif status == 400:
                row.bad_requests += 1
            else:
                row.other_errors[str(status)] += 1
        if status >= 400:
            self.codes[(str(status), record.error_code or NONE)] += 1
            self.fields.update(record.error_fields)


@dataclass
class FlowRow:
    """Launches of one flow (by its ``flow`` label)."""

    flow: str
    launches: int = 0
    ok: int = 0
    bad_requests: int = 0
    other_errors: Counter[str] = field(default_factory=Counter)

    @property
    def bad_request_rate(self) -> float:
        return self.bad_requests / self.launches if self.launches else 0.0


@dataclass
class Report:
    flows: list[FlowRow]
    error_codes: list[tuple[str, str, int]]  # (status, code, count)
    fields: list[tuple[str, int]]
    examples: list[Example]  # in the order their kinds were met
    stats: Stats
    other_calls: Counter[str]  # operation -> calls, for everything but launches

    @classmethod
    def build(
        cls,
        tally: CallTally,
        examples: Mapping[str, Example],
        stats: Stats,
        flows: Iterable[SandboxFlow],
    ) -> Report:
        # Known flows first, in their catalogue order, then whatever else was called.
        order = {flow.name: index for index, flow in enumerate(flows)}
        rows = tally.flows.values()
        ordered = sorted(rows, key=lambda r: (order.get(r.flow, len(order)), r.flow))
        return cls(
            flows=ordered,
            error_codes=[(s, c, n) for (s, c), n in tally.codes.most_common(_TOP)],
            fields=tally.fields.most_common(_TOP),
            examples=list(examples.values()),
            stats=stats,
            other_calls=Counter(tally.other_calls),
        )


def render_report(report: Report, out: IO[str], *, interrupted: bool = False) -> None:
    """Rich tables on a terminal (when rich is installed), plain aligned text otherwise."""
    if out.isatty():
        try:
            _render_rich(report, out, interrupted)
            return
        except ImportError:
            pass
    out.write(_render_plain(report, interrupted))


def _other(row: FlowRow) -> str:
    return ", ".join(f"{status}×{n}" for status, n in sorted(row.other_errors.items())) or "-"


def _calls_line(report: Report) -> str:
    stats = report.stats
    launches = f"{stats.launches} launches"
    if stats.bursts:
        plural = "es" if stats.bursts != 1 else ""
        launches += f" ({stats.burst_launches} in {stats.bursts} batch burst{plural})"
    parts = [launches]
    if stats.polls:
        done = ", ".join(f"{n} {s}" for s, n in sorted(stats.statuses.items()))
        parts.append(f"{stats.polls} execution polls ({done or 'none finished'})")
    parts.append(f"{stats.version_reads} flow version reads")
    parts.append(f"{stats.tokens} token requests ({stats.instances} app instances + a batch job)")
    return "calls: " + ", ".join(parts)


def _example_lines(example: Example) -> list[str]:
    record = example.record
    head = f"{record.method} {record.template} -> {headline(record)}"
    return [
        example.title,
        f"    {head}",
        *(f"    {line}" for line in failure_lines(record, bodies=False)),
    ]


def _render_plain(report: Report, interrupted: bool) -> str:
    lines = ["", "flowscope demo report" + (" (interrupted)" if interrupted else ""), ""]
    lines.append(_calls_line(report))
    lines.append("")
    lines.append("Launches per flow")
    width = max([len(r.flow) for r in report.flows] + [4])
    lines.append(
        f"  {'flow':<{width}}  {'launches':>8}  {'ok':>6}  {'400':>6}  {'400 rate':>8}  "
        "other errors"
    )
    for row in report.flows:
        lines.append(
            f"  {row.flow:<{width}}  {row.launches:>8}  {row.ok:>6}  {row.bad_requests:>6}  "
            f"{row.bad_request_rate:>8.1%}  {_other(row)}"
        )
    if any(row.flow == MISSING for row in report.flows):
        lines.append(f"  ({MISSING}: launches without a flowId in the body)")
    lines.append("")
    lines.append("Top error codes")
    for status, code, count in report.error_codes:
        lines.append(f"  {status} {code:<40} {count:>6}")
    if not report.error_codes:
        lines.append("  none")
    lines.append("")
    lines.append("Top failing fields")
    for name, count in report.fields:
        lines.append(f"  {name:<44} {count:>6}")
    if not report.fields:
        lines.append("  none")
    lines.append("")
    lines.append("One example of each mistake, as flowscope reported it")
    for example in report.examples:
        lines.extend("  " + line for line in _example_lines(example))
        lines.append("")
    if not report.examples:
        lines.append("  none")
        lines.append("")
    return "\n".join(lines)


def _render_rich(report: Report, out: IO[str], interrupted: bool) -> None:
    from rich.console import Console
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    console = Console(file=out)
    title = "flowscope demo report" + (" (interrupted)" if interrupted else "")
    console.print()
    console.rule(f"[bold]{title}")
    console.print(_calls_line(report), highlight=False)

    flows = Table(title="Launches per flow", title_justify="left")
    flows.add_column("flow")
    for name in ("launches", "ok", "400", "400 rate"):
        flows.add_column(name, justify="right")
    flows.add_column("other errors")
    for row in report.flows:
        rate = f"{row.bad_request_rate:.1%}"
        flows.add_row(
            row.flow,
            str(row.launches),
            str(row.ok),
            str(row.bad_requests),
            Text(rate, style="red" if row.bad_request_rate >= 0.1 else ""),
            _other(row),
        )
    console.print(flows)
    if any(row.flow == MISSING for row in report.flows):
        console.print(f"  ({MISSING}: launches without a flowId in the body)", highlight=False)

    codes = Table(title="Top error codes", title_justify="left")
    codes.add_column("status", justify="right")
    codes.add_column("error code")
    codes.add_column("calls", justify="right")
    for status, code, count in report.error_codes:
        codes.add_row(status, code, str(count))
    fields = Table(title="Top failing fields", title_justify="left")
    fields.add_column("field")
    fields.add_column("calls", justify="right")
    for name, count in report.fields:
        fields.add_row(name, str(count))
    console.print(codes)
    console.print(fields)

    console.print("[bold]One example of each mistake, as flowscope reported it")
    for example in report.examples:
        lines = _example_lines(example)
        console.print(Padding(Text(lines[0], style="bold"), (0, 0, 0, 2)))
        for line in lines[1:]:
            # Padding keeps long messages indented when the terminal wraps them.
            console.print(Padding(Text(line.strip()), (0, 0, 0, 6)))
        console.print()
