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

import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from bench import compaction_daemon, compaction_pg
from bench.beside import Timed, beside_appender, compared
from bench.daemon import app_config
from bench.report import Row
from bench.workspace import Workspace, progress
from events.model import Compacted, ConfigLoaded
from events.protocol import Chunk, Selection
from events.sqlite import DB_NAME, SQLiteLog, where
from events.units import DAY
from pipeline.tools._maintenance import compact
from projections import retention
from projections.runner import Runner

NAME = "compaction"
STARTUP_GOAL = 1.0  # seconds for Runner.start after a compaction


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
        rows += compared(NAME, label, ours, raw, note=f"{len(history):,}-event SQLite log")
    progress(f"{NAME}: python -m pipeline compact, everything expired")
    now = last + 31 * DAY  # the corpus keeps the default 30 days
    tool = _tool(ws, master, now)
    raw = _raw(ws, master, _tool_selection(master, now))
    note = "Runner.start from a snapshot"
    rows += compared(NAME, "compact tool, all expired", tool, raw, note=note)
    rows += _after_rotation(ws, master, cases[0][1])
    rows += compaction_daemon.run(ws, master, first + DAY)
    rows += compaction_pg.run(ws)
    return rows


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
    # The copy's 600 MB must not be flushed on the compaction's time: its first
    # checkpoint syncs the file (and the DELETE, which never syncs, would not pay).
    os.sync()
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

    def tool() -> tuple[int, float | None]:
        said = compact(store, now)  # "removed N events older than ..."
        return int(said.split()[1]), None

    return beside_appender(["--db", str(store / DB_NAME)], tool)


def _tool_selection(master: Path, now: float) -> Selection:
    """What the tool removes: the default retention, keeping the config in force."""
    with SQLiteLog(master / DB_NAME) as log:
        return retention.rotation(Runner.start(log).states.retention, 30.0, now)


def _after_rotation(ws: Workspace, master: Path, selection: Selection) -> list[Row]:
    """What the daemon pays after a daily rotation: ``catch_up``, the snapshot that
    replaces the one the rotation dropped, then the next start-up."""
    progress(f"{NAME}: catch_up and start-up after a daily rotation")
    db = _copy(ws, master, f"{NAME}-startup") / DB_NAME
    with SQLiteLog(db) as log:
        before = _timed(lambda: Runner.start(log))
        runner = Runner.start(log)
        log.compact("rotation", selection)
        caught = _timed(runner.catch_up)
        saved = _timed(lambda: runner.snapshot(log))
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
            measure="daemon snapshot after a daily rotation",
            value=saved,
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
