"""Start-up from the PostgreSQL log beside the SQLite one: read + decode + fold of 1M events.

The 1M-event history of ``fold`` is copied into a PostgreSQL log (the copy
``migrate`` makes, so the rows are byte for byte those of the SQLite file),
then ``Runner.start`` (no snapshot: the whole log is read, decoded and folded)
runs on each backend in alternating rounds. The SQLite figures of the same
run are the baseline: the ratio is what reading over a socket costs start-up.

Needs a server: ``WABOT_BENCH_PG_DSN`` (default postgres@127.0.0.1:5432/test);
everything goes in a schema of its own, dropped at the end.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable

import psycopg

from bench.measure import median_rates, seconds
from bench.report import Row
from bench.workspace import Workspace, progress
from events.pg_schema import label
from events.pg_transfer import PostgresSide
from events.postgres import PostgresReader
from events.protocol import LogReader
from events.sqlite import SQLiteReader
from events.transfer import SQLiteSide, copy
from projections.runner import Runner

NAME = "pg_fold"
DSN = os.environ.get("WABOT_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
NUMBER = "491700000000"


def run(ws: Workspace) -> list[Row]:
    try:
        psycopg.connect(DSN, connect_timeout=3).close()
    except psycopg.Error:
        progress(
            f"{NAME}: skipped: PostgreSQL not reachable at {label(DSN)}: set WABOT_BENCH_PG_DSN"
        )
        return []
    schema = f"wabot_bench_{os.getpid()}_{secrets.token_hex(3)}"
    store = ws.store()
    count = ws.sizes.history
    try:
        progress(f"{NAME}: copying the {count:,}-event log into PostgreSQL")
        took = seconds(
            lambda: copy(SQLiteSide(store), PostgresSide(DSN, name=NUMBER, schema=schema))
        )
        pg: Callable[[], LogReader] = lambda: PostgresReader(DSN, name=NUMBER, schema=schema)  # noqa: E731
        lite: Callable[[], LogReader] = lambda: SQLiteReader(store / "events.db")  # noqa: E731
        progress(f"{NAME}: Runner.start on both logs, alternating")
        started_pg, started_lite = median_rates(
            count, lambda: _start(pg, count), lambda: _start(lite, count)
        )
        progress(f"{NAME}: log.read() on both logs, alternating")
        read_pg, read_lite = median_rates(count, lambda: _read(pg), lambda: _read(lite))
    finally:
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    note = f"{count:,} events, no snapshot, median of 3 alternating"
    return [
        Row(
            bench=NAME,
            measure="Runner.start: read + decode + fold from PostgreSQL",
            value=started_pg,
            unit="ev/s",
            baseline=started_lite,
            baseline_label="the same from SQLite",
            note=note,
        ),
        Row(
            bench=NAME,
            measure="  log.read() (read + decode) from PostgreSQL",
            value=read_pg,
            unit="ev/s",
            baseline=read_lite,
            baseline_label="the same from SQLite",
            note=note,
        ),
        Row(
            bench=NAME,
            measure="  migrate: copy + verify into PostgreSQL",
            value=count / took,
            unit="ev/s",
            note="information, one run: COPY in one transaction, then both sides hashed",
        ),
    ]


def _start(open_log: Callable[[], LogReader], count: int) -> float:
    log = open_log()
    try:

        def fold() -> None:
            seq = Runner.start(log).seq
            if seq != count:
                raise AssertionError(f"fold stopped at seq {seq} of {count}")

        return seconds(fold)
    finally:
        log.close()


def _read(open_log: Callable[[], LogReader]) -> float:
    log = open_log()
    try:
        return seconds(lambda: sum(1 for _ in log.read()))
    finally:
        log.close()
