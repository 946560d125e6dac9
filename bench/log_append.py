"""Appends through ``SQLiteLog.append`` against raw sqlite3 + msgspec on the same table.

Both sides encode the same ``MessageReceived`` events and insert them into a
file the log itself created, so the table, index and AUTOINCREMENT are the
same; the ratio is what the log's own work (burst bookkeeping, group commit,
sequence checks, ``Recorded`` results) costs.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from pathlib import Path

import msgspec

from bench.corpus import sample_message
from bench.measure import FLUSH_ROUNDS, REPEATS, median_rates
from bench.report import Row
from bench.workspace import Workspace, progress
from events.model import MessageReceived
from events.sqlite import SQLiteLog, Synchronous

NAME = "log_append"
BASELINE = "raw sqlite3+msgspec"
# (synchronous, burst, target ev/s); WAL + NORMAL has absolute targets.
CASES: tuple[tuple[Synchronous, int, float | None], ...] = (
    ("NORMAL", 100, 100_000),
    ("NORMAL", 1, 20_000),
    ("FULL", 100, None),
    ("FULL", 1, None),
)
FULL_SINGLE_GOAL = 0.9  # FULL single commits at least this share of raw sqlite3's (issue 19)
# With synchronous=FULL every commit waits for the disk: FULL single commits measured
# 0.76x and 0.89x in two runs of three, 0.83x and 0.85x in two of nine, as many events.
FULL_ROUNDS = FLUSH_ROUNDS
_INSERT = "INSERT INTO events (ts, type, chat, key, body) VALUES (?, ?, ?, ?, ?)"


def run(ws: Workspace) -> list[Row]:
    rows = []
    for sync, burst, target in CASES:
        rounds = FULL_ROUNDS if sync == "FULL" else REPEATS
        count = _count(ws, sync, burst) * REPEATS // rounds  # as many events in all as 3 runs
        events = [sample_message(n) for n in range(count)]
        progress(f"{NAME}: {count:,} events x {rounds}, bursts of {burst}, {sync}")
        ours, raw = median_rates(
            count,
            lambda: _through_log(ws, events, burst, sync),  # noqa: B023
            lambda: _raw(ws, events, burst, sync),  # noqa: B023
            repeats=rounds,
        )
        goal = raw * FULL_SINGLE_GOAL if (sync, burst) == ("FULL", 1) else target
        rows.append(
            Row(
                bench=NAME,
                measure=f"WAL {sync}, {'single commits' if burst == 1 else f'bursts of {burst}'}",
                value=ours,
                unit="ev/s",
                baseline=raw,
                baseline_label=BASELINE,
                target=goal,
                note=f"{count:,} events, median of {rounds} alternating rounds"
                + ("" if goal else "; information"),
            )
        )
    size = len(msgspec.json.encode(sample_message(0)))
    rows[0].note += f"; event body {size} B"
    return rows


def _count(ws: Workspace, sync: Synchronous, burst: int) -> int:
    if burst > 1:
        return ws.sizes.append_burst
    return ws.sizes.append_single if sync == "NORMAL" else ws.sizes.append_single_full


def _through_log(
    ws: Workspace, events: list[MessageReceived], burst: int, sync: Synchronous
) -> float:
    folder = ws.scratch("append")
    log = SQLiteLog(folder / "events.db", synchronous=sync)
    os.sync()  # earlier runs' dirty pages must not be flushed on this run's time
    try:
        started = time.perf_counter()
        for start in range(0, len(events), burst):
            log.append(*events[start : start + burst])
        return time.perf_counter() - started
    finally:
        log.close()
        shutil.rmtree(folder)


def _raw(ws: Workspace, events: list[MessageReceived], burst: int, sync: Synchronous) -> float:
    folder = ws.scratch("append-raw")
    path = folder / "events.db"
    SQLiteLog(path).close()  # the log's own schema, so both sides write the same table
    conn = _connect(path, sync)
    encoder = msgspec.json.Encoder()
    os.sync()
    try:
        started = time.perf_counter()
        for start in range(0, len(events), burst):
            ts = round(time.time() * 1_000_000)
            rows = [
                (ts, type(e).__name__, e.chat, None, encoder.encode(e).decode())
                for e in events[start : start + burst]
            ]
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(_INSERT, rows)
            conn.execute("COMMIT")
        return time.perf_counter() - started
    finally:
        conn.close()
        shutil.rmtree(folder)


def _connect(path: Path, sync: Synchronous) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={sync}")
    return conn
