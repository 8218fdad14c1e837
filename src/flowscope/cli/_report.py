"""The demo's closing report, read from the metrics flowscope wrote and the failures it logged."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flowscope.sandbox import SandboxFlow

__all__ = ["FlowRow", "Report", "Snapshot", "render_report"]

_SAMPLES = ("flowscope_requests_total", "flowscope_errors_total", "flowscope_error_fields_total")
_TOP = 8

_Key = tuple[str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True)
class Snapshot:
    """The counters of the default registry at one moment, so a report covers only its run."""

    values: Mapping[_Key, float]

    @classmethod
    def take(cls) -> Snapshot:
        from prometheus_client import REGISTRY

        values: dict[_Key, float] = {}
        for family in REGISTRY.collect():
            for sample in family.samples:
                if sample.name in _SAMPLES:
                    key = (sample.name, tuple(sorted(sample.labels.items())))
                    values[key] = sample.value
        return cls(values)

    def since(self, earlier: Snapshot) -> Iterable[tuple[str, dict[str, str], float]]:
        """``(sample name, labels, increase)`` for every counter that moved."""
        for key, value in self.values.items():
            increase = value - earlier.values.get(key, 0.0)
            if increase > 0:
                yield key[0], dict(key[1]), increase


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
    examples: list[Any]  # the demo's Example objects, in the order their kinds were met
    stats: Any
    other_calls: Counter[str]  # operation -> calls, for everything but launches

    @classmethod
    def build(
        cls,
        before: Snapshot,
        examples: Mapping[str, Any],
        stats: Any,
        flows: Iterable[SandboxFlow],
    ) -> Report:
        rows: dict[str, FlowRow] = {}
        codes: Counter[tuple[str, str]] = Counter()
        fields: Counter[str] = Counter()
        other: Counter[str] = Counter()
        for name, labels, increase in Snapshot.take().since(before):
            count = int(increase)
            if name == "flowscope_requests_total":
                if labels.get("operation") != "launch":
                    other[labels.get("operation", "?")] += count
                    continue
                row = rows.setdefault(labels["flow"], FlowRow(labels["flow"]))
                row.launches += count
                status = labels.get("status_code", "")
                if status.startswith("2"):
                    row.ok += count
                elif status == "400":
                    row.bad_requests += count
                else:
                    row.other_errors[status] += count
            elif name == "flowscope_errors_total":
                codes[(labels.get("status_code", ""), labels.get("error_code", ""))] += count
            elif name == "flowscope_error_fields_total":
                fields[labels.get("field", "")] += count
        # Known flows first, in their catalogue order, then whatever else was called.
        order = {flow.name: index for index, flow in enumerate(flows)}
        ordered = sorted(rows.values(), key=lambda r: (order.get(r.flow, len(order)), r.flow))
        return cls(
            flows=ordered,
            error_codes=[(s, c, n) for (s, c), n in codes.most_common(_TOP)],
            fields=fields.most_common(_TOP),
            examples=list(examples.values()),
            stats=stats,
            other_calls=other,
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


def _example_lines(example: Any) -> list[str]:
    report: dict[str, Any] = example.report
    error = report.get("error") or {}
    head = f"{report.get('method', '?')} {report.get('url_template', '?')} -> "
    head += " ".join(str(p) for p in (report.get("status_code"), error.get("code")) if p)
    if error.get("message"):
        head += f": {error['message']}"
    lines = [example.title, f"    {head}"]
    fields = error.get("fields") or []
    if fields:
        lines.append(f"    failing fields: {', '.join(fields)}")
    lines.append(f"    correlation id: {report.get('correlation_id') or '-'}")
    lines.append(f"    trace id:       {report.get('trace_id') or '-'}")
    for hint in report.get("hints") or []:
        where = f" [{hint['field']}]" if hint.get("field") else ""
        lines.append(f"    hint {hint['code']}{where}: {hint['message']}")
    return lines


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
    if any(row.flow == "__missing__" for row in report.flows):
        lines.append("  (__missing__: launches without a flowId in the body)")
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
    if any(row.flow == "__missing__" for row in report.flows):
        console.print("  (__missing__: launches without a flowId in the body)", highlight=False)

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
