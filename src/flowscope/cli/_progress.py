"""Progress while the demo runs: a rich bar on a terminal, a plain line now and then otherwise."""

from __future__ import annotations

import time
from typing import IO, TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ._traffic import Stats

__all__ = ["Progress", "make_progress"]

_PLAIN_EVERY = 2.0


class Progress(Protocol):
    """What the traffic driver reports to; ``stats`` is what the driver did so far."""

    def update(self, elapsed: float, stats: Stats, failed: int) -> None: ...

    def note(self, message: str) -> None: ...

    def close(self, elapsed: float, stats: Stats, failed: int) -> None: ...


def make_progress(out: IO[str], duration: float | None) -> Progress:
    """A rich bar when ``out`` is a terminal and rich is installed, else plain lines."""
    if out.isatty():
        try:
            return _RichProgress(out, duration)
        except ImportError:
            pass
    return _PlainProgress(out, duration)


def _summary(stats: Stats, failed: int) -> str:
    return f"{stats.launches} launches, {stats.polls} polls, {failed} failed calls"


class _PlainProgress:
    def __init__(self, out: IO[str], duration: float | None) -> None:
        self._out = out
        self._duration = duration
        self._last = time.monotonic()

    def update(self, elapsed: float, stats: Stats, failed: int) -> None:
        now = time.monotonic()
        if now - self._last < _PLAIN_EVERY:
            return
        self._last = now
        self._line(elapsed, stats, failed)

    def note(self, message: str) -> None:
        self._out.write(f"  {message}\n")
        self._out.flush()

    def close(self, elapsed: float, stats: Stats, failed: int) -> None:
        self._line(elapsed, stats, failed)
        self._out.write("\n")
        self._out.flush()

    def _line(self, elapsed: float, stats: Stats, failed: int) -> None:
        total = f" / {self._duration:g} s" if self._duration else " s"
        self._out.write(f"  {elapsed:5.1f}{total}  {_summary(stats, failed)}\n")
        self._out.flush()


class _RichProgress:
    def __init__(self, out: IO[str], duration: float | None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as RichProgress

        self._console = Console(file=out)
        columns: list[Any] = [SpinnerColumn(), TextColumn("[bold]traffic")]
        if duration is not None:
            columns.append(BarColumn())
        columns += [TimeElapsedColumn(), TextColumn("{task.fields[summary]}")]
        self._progress = RichProgress(*columns, console=self._console, transient=False)
        self._task = self._progress.add_task("traffic", total=duration, summary="starting")
        self._progress.start()

    def update(self, elapsed: float, stats: Stats, failed: int) -> None:
        self._progress.update(self._task, completed=elapsed, summary=_summary(stats, failed))

    def note(self, message: str) -> None:
        self._progress.console.print(f"  {message}", markup=False, highlight=False)

    def close(self, elapsed: float, stats: Stats, failed: int) -> None:
        total = self._progress.tasks[0].total
        self._progress.update(
            self._task,
            completed=total if total is not None else elapsed,
            summary=_summary(stats, failed),
        )
        self._progress.stop()
