"""Compaction beside a busy appender: as fast as a raw DELETE, and no append waits or fails.

The four cases of issue 14 on the 1M-event log (SQLite): a daily rotation
(the oldest day), the oldest third, ``python -m pipeline compact`` with
everything expired, and what the daemon pays after a daily rotation (its
``catch_up``, and ``Runner.start`` of the next start-up). Each compaction
runs on a fresh copy of the log, beside a second process appending one
event every 5 ms (``bench.appender``); its baseline is one ``DELETE`` statement
of the same rows on another copy, beside the same appender. The daemon's
reply latency during a scheduled rotation is in ``bench.compaction_daemon``;
PostgreSQL's cases in ``bench.compaction_pg``.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import msgspec

from bench import compaction_daemon, compaction_pg
from bench.appender import Appends
from bench.daemon import REPO, app_config
from bench.measure import percentile
from bench.report import Row
from bench.workspace import Workspace, progress
from events.model import Compacted, ConfigLoaded
from events.protocol import Chunk, Selection
from events.sqlite import DB_NAME, SQLiteLog
from events.sqlite_schema import where
from events.units import DAY
from pipeline.tools._maintenance import compact
from projections import retention
from projections.runner import Runner

NAME = "compaction"
RATIO_GOAL = 2.0  # compaction of 1M events at most twice the raw DELETE
APPEND_GOAL = 0.100  # no append slower than this
STARTUP_GOAL = 1.0  # seconds for Runner.start after a compaction
SETTLE = 0.2  # seconds the appender goes on after the compaction, to see the tail


class Timed(NamedTuple):
    """One compaction (or raw DELETE) and what the appender saw meanwhile."""

    seconds: float
    removed: int
    longest: float  # the longest transaction: how long the write lock was held at most
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


def beside_appender(args: Sequence[str], work: Callable[[], tuple[int, float]]) -> Timed:
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


def run(ws: Workspace) -> list[Row]:
    master = _master(ws)
    history = ws.history()
    first, last = history[0].ts, history[-1].ts
    cases = (
        ("daily rotation", Selection(older_than=first + DAY)),
        ("oldest third", Selection(older_than=first + (last - first) / 3)),
    )
    rows: list[Row] = []
    for label, selection in cases:
        progress(f"{NAME}: {label}")
        ours = _ours(ws, master, selection)
        raw = _raw(ws, master, selection)
        rows += compared(label, ours, raw, note=f"{len(history):,}-event SQLite log")
    progress(f"{NAME}: python -m pipeline compact, everything expired")
    now = last + 31 * DAY  # the corpus keeps the default 30 days
    tool = _tool(ws, master, now)
    raw = _raw(ws, master, _tool_selection(master, now))
    rows += compared("compact tool, all expired", tool, raw, note="Runner.start from a snapshot")
    rows += _after_rotation(ws, master, cases[0][1])
    rows += compaction_daemon.run(ws, master, first + DAY)
    rows += compaction_pg.run(ws)
    return rows


def compared(label: str, ours: Timed, raw: Timed, *, note: str) -> list[Row]:
    """The rows of one case: time against the raw DELETE, then what the appender saw."""
    if ours.removed != raw.removed:
        note += f"; removed {ours.removed:,} vs raw {raw.removed:,}"
    else:
        note += f"; {ours.removed:,} removed"
    mine, theirs = stats(ours), stats(raw)
    rows = [
        Row(
            bench=NAME,
            measure=f"{label}: compaction",
            value=ours.seconds,
            unit="s",
            baseline=raw.seconds,
            baseline_label="one DELETE",
            target=raw.seconds * RATIO_GOAL,
            better="lower",
            note=note,
        ),
        Row(
            bench=NAME,
            measure=f"{label}: longest chunk (write lock held)",
            value=ours.longest * 1000,
            unit="ms",
            baseline=raw.longest * 1000,
            baseline_label="one DELETE",
            better="lower",
        ),
    ]
    for what, q in (("slowest append", 100.0), ("append p99", 99.0)):
        rows.append(
            Row(
                bench=NAME,
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
            bench=NAME,
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


def _master(ws: Workspace) -> Path:
    """A copy of the history's log with the projections' snapshot, as a running bot's has."""
    folder = ws.scratch(f"{NAME}-master")
    shutil.copyfile(ws.store() / DB_NAME, folder / DB_NAME)
    progress(f"{NAME}: folding the history once for its snapshot")
    with SQLiteLog(folder / DB_NAME) as log:
        # The corpus's config is a fragment; ``compact`` needs the config in force.
        log.append(ConfigLoaded(hash="bench", config=app_config(1), path="app.json"))
        Runner.start(log).snapshot(log)
    return folder


def _copy(ws: Workspace, master: Path, name: str) -> Path:
    folder = ws.scratch(name)
    shutil.copyfile(master / DB_NAME, folder / DB_NAME)
    return folder


def _ours(ws: Workspace, master: Path, selection: Selection) -> Timed:
    db = _copy(ws, master, f"{NAME}-ours") / DB_NAME
    with SQLiteLog(db) as log:
        return beside_appender(["--db", str(db)], lambda: _compact(log, selection))


def _compact(log: SQLiteLog, selection: Selection) -> tuple[int, float]:
    held: list[float] = [0.0]

    def chunk(done: Chunk) -> None:
        held.append(done.held)

    marker = log.compact("rotation", selection, progress=chunk)
    removed = marker.event.removed if marker and isinstance(marker.event, Compacted) else 0
    return removed, max(held)


def _raw(ws: Workspace, master: Path, selection: Selection) -> Timed:
    db = _copy(ws, master, f"{NAME}-raw") / DB_NAME
    condition, args = where(selection)
    conn = sqlite3.connect(db, isolation_level=None, timeout=60)
    try:

        def delete() -> tuple[int, float]:
            started = time.perf_counter()
            removed = conn.execute(f"DELETE FROM events WHERE {condition}", args).rowcount
            return removed, time.perf_counter() - started

        return beside_appender(["--db", str(db)], delete)
    finally:
        conn.close()


def _tool(ws: Workspace, master: Path, now: float) -> Timed:
    """``python -m pipeline compact``'s work, in this process (the appender is another)."""
    store = _copy(ws, master, f"{NAME}-tool")

    def tool() -> tuple[int, float]:
        said = compact(store, now)  # "removed N events older than ..."
        return int(said.split()[1]), 0.0

    return beside_appender(["--db", str(store / DB_NAME)], tool)


def _tool_selection(master: Path, now: float) -> Selection:
    """What the tool removes: the default retention, keeping the config in force."""
    with SQLiteLog(master / DB_NAME) as log:
        return retention.rotation(Runner.start(log).states.retention, 30.0, now)


def _after_rotation(ws: Workspace, master: Path, selection: Selection) -> list[Row]:
    """What the daemon pays after a daily rotation: ``catch_up``, then the next start-up."""
    progress(f"{NAME}: catch_up and start-up after a daily rotation")
    db = _copy(ws, master, f"{NAME}-startup") / DB_NAME
    with SQLiteLog(db) as log:
        before = _timed(lambda: Runner.start(log))
        runner = Runner.start(log)
        log.compact("rotation", selection)
        caught = _timed(runner.catch_up)
        after = _timed(lambda: Runner.start(log))
    note = f"{len(ws.history()):,}-event log, snapshot taken before the rotation"
    return [
        Row(
            bench=NAME,
            measure="daemon catch_up after a daily rotation",
            value=caught,
            unit="s",
            baseline=before,
            baseline_label="Runner.start, no compaction",
            better="lower",
            note=note,
        ),
        Row(
            bench=NAME,
            measure="Runner.start after a daily rotation",
            value=after,
            unit="s",
            baseline=before,
            baseline_label="Runner.start, no compaction",
            target=STARTUP_GOAL,
            better="lower",
            note=note,
        ),
    ]


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started
