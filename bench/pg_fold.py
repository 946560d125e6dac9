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

from collections.abc import Callable

from bench.measure import median_rates, seconds
from bench.pg import DSN, scratch_schema, unreachable
from bench.report import Row
from bench.workspace import Workspace, progress
from events.postgres import PostgresReader, PostgresSide
from events.protocol import LogReader
from events.sqlite import SQLiteReader
from events.transfer import SQLiteSide, copy
from projections.runner import Runner

NAME = "pg_fold"
NUMBER = "491700000000"


def run(ws: Workspace) -> list[Row]:
    if unreachable(NAME):
        return []
    store = ws.store()
    count = ws.sizes.history
    with scratch_schema() as schema:
        progress(f"{NAME}: copying the {count:,}-event log into PostgreSQL")
        target = PostgresSide(DSN, name=NUMBER, schema=schema)
        took = seconds(lambda: copy(SQLiteSide(store), target))
        pg: Callable[[], LogReader] = lambda: PostgresReader(DSN, name=NUMBER, schema=schema)  # noqa: E731
        lite: Callable[[], LogReader] = lambda: SQLiteReader(store / "events.db")  # noqa: E731
        progress(f"{NAME}: Runner.start on both logs, alternating")
        started_pg, started_lite = median_rates(
            count, lambda: _timed(pg, _fold(count)), lambda: _timed(lite, _fold(count))
        )
        progress(f"{NAME}: log.read() on both logs, alternating")
        read_pg, read_lite = median_rates(
            count, lambda: _timed(pg, _read), lambda: _timed(lite, _read)
        )
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


def _timed(open_log: Callable[[], LogReader], work: Callable[[LogReader], object]) -> float:
    """Seconds ``work`` takes on a freshly opened log (opening it is not counted)."""
    log = open_log()
    try:
        return seconds(lambda: work(log))
    finally:
        log.close()


def _fold(count: int) -> Callable[[LogReader], None]:
    def fold(log: LogReader) -> None:
        seq = Runner.start(log).seq
        if seq != count:
            raise AssertionError(f"fold stopped at seq {seq} of {count}")

    return fold


def _read(log: LogReader) -> int:
    return sum(1 for _ in log.read())
