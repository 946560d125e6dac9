"""Timing helpers: best-of-noise medians, rates and percentiles."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence

REPEATS = 3
# For figures that wait on a disk flush (fsync, a database server's WAL), whose speed
# drifts from minute to minute here: many short alternating rounds let a figure and
# its baseline see the same disk, where three long runs each would not.
FLUSH_ROUNDS = 9


def seconds(work: Callable[[], object]) -> float:
    """Wall time of one call, on the monotonic high-resolution clock."""
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def median_rates(count: int, *works: Callable[[], float], repeats: int = REPEATS) -> list[float]:
    """Per work, the median over ``repeats`` runs of ``count / work()``.

    Each work times itself, which keeps set-up (fresh files, connections) out of
    the figure. Runs alternate between the works, so a slow spell of the machine
    hits a figure and its baseline alike.
    """
    times: list[list[float]] = [[] for _ in works]
    for _ in range(repeats):
        for spent, work in zip(times, works, strict=True):
            spent.append(work())
    return [statistics.median(count / t for t in spent) for spent in times]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by nearest rank, so it is a value that occurred."""
    ranked = sorted(values)
    rank = math.ceil(q / 100 * len(ranked))
    return ranked[min(max(rank, 1), len(ranked)) - 1]
