"""Complexity checks that cannot flake: work at size N against work at size N/10, same test.

Both sizes are measured in this thread's CPU time (``time.thread_time``), which other processes
on a busy machine do not inflate, and each is the best of a few runs. Linear work grows ~10x
from the small size to the big one; quadratic work grows ~100x. Absolute timings are reported
by ``make bench`` (benchmarks/), not asserted here.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["assert_cost_grows_at_most", "cpu_seconds"]


def cpu_seconds(run: Callable[[], object], repeat: int = 3) -> float:
    """The least CPU time this thread spent in ``run()`` over ``repeat`` runs."""
    best = float("inf")
    for _ in range(repeat):
        started = time.thread_time()
        run()
        best = min(best, time.thread_time() - started)
    return best


def assert_cost_grows_at_most(
    small: Callable[[], object], big: Callable[[], object], growth: float, slack: float = 3.0
) -> tuple[float, float]:
    """``big`` (10x the input of ``small``) costs at most ``slack * growth`` times as much.

    ``growth`` is 10 for linear work and 1 for work bounded whatever the input: a quadratic
    step (100x) fails the first, an unbounded linear one (10x) the second.
    Returns both CPU times so a test can report them.
    """
    t_small = cpu_seconds(small)
    t_big = cpu_seconds(big)
    # A floor of 1 ms keeps timer resolution from turning a tiny baseline into a tight bound.
    assert t_big <= slack * growth * max(t_small, 0.001), (
        f"{t_big * 1e3:.1f} ms for 10x the input of a {t_small * 1e3:.1f} ms baseline: "
        f"grows faster than {growth:g}x"
    )
    return t_small, t_big
