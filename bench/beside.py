"""A compaction (or a raw DELETE) beside a process appending every 5 ms; rows comparing them."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

import msgspec

from bench.appender import Appends
from bench.daemon import REPO
from bench.measure import percentile
from bench.report import Row

RATIO_GOAL = 2.0  # compaction of 1M events at most twice the raw DELETE
APPEND_GOAL = 0.100  # no append slower than this
SETTLE = 0.2  # seconds the appender goes on after the compaction, to see the tail


class Timed(NamedTuple):
    """One compaction (or raw DELETE) and what the appender saw meanwhile."""

    seconds: float
    removed: int
    longest: float | None  # the longest transaction (the write lock held); None: not known
    appends: Appends
    window: tuple[float, float]  # monotonic start and end of the compaction


class Appender:
    """``bench.appender`` in a second process, appending to ``args``'s log until stopped."""

    def __init__(self, args: Sequence[str]) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench.appender", *args],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self._proc.stdout is not None
        if self._proc.stdout.readline() != b"ready\n":
            self.stop()
            raise RuntimeError("the appender process did not start")

    def stop(self) -> Appends:
        out, _ = self._proc.communicate(timeout=120)
        if self._proc.returncode != 0:
            raise RuntimeError(f"the appender process exited {self._proc.returncode}")
        return msgspec.json.decode(out.splitlines()[-1], type=Appends)


def beside_appender(args: Sequence[str], work: Callable[[], tuple[int, float | None]]) -> Timed:
    """Run ``work`` (returning rows removed and the longest hold) while a process appends."""
    appender = Appender(args)
    try:
        started = time.monotonic()
        removed, longest = work()
        ended = time.monotonic()
        time.sleep(SETTLE)
    finally:
        appends = appender.stop()
    return Timed(ended - started, removed, longest, appends, (started, ended))


def compared(bench: str, label: str, ours: Timed, raw: Timed, *, note: str) -> list[Row]:
    """The rows of one case: time against the raw DELETE, then what the appender saw."""
    if ours.removed != raw.removed:
        note += f"; removed {ours.removed:,} vs raw {raw.removed:,}"
    else:
        note += f"; {ours.removed:,} removed"
    mine, theirs = stats(ours), stats(raw)
    rows = [
        Row(
            bench=bench,
            measure=f"{label}: compaction",
            value=ours.seconds,
            unit="s",
            baseline=raw.seconds,
            baseline_label="one DELETE",
            target=raw.seconds * RATIO_GOAL,
            better="lower",
            note=note,
        ),
    ]
    if ours.longest is not None and raw.longest is not None:
        rows.append(
            Row(
                bench=bench,
                measure=f"{label}: longest chunk (write lock held)",
                value=ours.longest * 1000,
                unit="ms",
                baseline=raw.longest * 1000,
                baseline_label="one DELETE",
                better="lower",
            )
        )
    for what, q in (("slowest append", 100.0), ("append p99", 99.0)):
        rows.append(
            Row(
                bench=bench,
                measure=f"{label}: {what}",
                value=percentile(mine.latencies, q) * 1000,
                unit="ms",
                baseline=percentile(theirs.latencies, q) * 1000,
                baseline_label="beside one DELETE",
                target=APPEND_GOAL * 1000 if q == 100.0 else None,
                better="lower",
                note=f"{len(mine.latencies)} appends, one every 5 ms, another process",
            )
        )
    rows.append(
        Row(
            bench=bench,
            measure=f"{label}: appends failed",
            value=mine.failures,
            unit="calls",
            baseline=None,
            target=0,
            better="lower",
            note=f"beside one DELETE: {theirs.failures} failed{theirs.first_error}",
        )
    )
    return rows


class Seen(NamedTuple):
    latencies: list[float]
    failures: int
    first_error: str


def stats(timed: Timed) -> Seen:
    """The appends that started while the compaction ran (and just after: their wait shows)."""
    start, end = timed.window
    latencies = [took for at, took in timed.appends.timed if start <= at <= end + SETTLE]
    failed = [why for at, why in timed.appends.failures if start <= at <= end + SETTLE]
    return Seen(latencies or [0.0], len(failed), f" ({failed[0]})" if failed else "")
