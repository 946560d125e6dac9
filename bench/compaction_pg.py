"""The compaction cases on PostgreSQL, on the first ``PG_EVENTS`` events of the history.

Each case copies those events into two fresh logs of a scratch schema; one is
compacted by ``PostgresLog.compact``, the other by one ``DELETE`` statement of
the same rows, each beside the appender process of ``bench.compaction``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

import psycopg

from bench.beside import Timed, beside_appender, compared
from bench.pg import DSN, scratch_schema, unreachable
from bench.report import Row
from bench.workspace import Workspace, progress
from events.model import Compacted, Recorded
from events.postgres import PostgresLog, where
from events.protocol import Chunk, Keyed, Selection
from events.units import DAY

NAME = "compaction"
PG_EVENTS = 200_000  # of the full history; the quick one is used whole


def run(ws: Workspace) -> list[Row]:
    if unreachable(NAME):
        return []
    records = ws.history()[:PG_EVENTS]
    first, last = records[0].ts, records[-1].ts
    cases = (
        ("daily rotation", Selection(older_than=first + DAY)),
        ("oldest third", Selection(older_than=first + (last - first) / 3)),
        ("all expired", Selection(older_than=last + 1)),
    )
    rows: list[Row] = []
    with scratch_schema() as schema:
        for n, (label, selection) in enumerate(cases):
            progress(f"{NAME}: PostgreSQL, {label}")
            ours = _case(schema, f"9{n}1", records, partial(_compact, selection=selection))
            raw = _case(schema, f"9{n}2", records, partial(_delete, selection=selection))
            note = f"{len(records):,}-event PostgreSQL log"
            rows += compared(NAME, f"PostgreSQL {label}", ours, raw, note=note)
    return rows


def _case(
    schema: str,
    name: str,
    records: list[Recorded],
    work: Callable[[PostgresLog], tuple[int, float]],
) -> Timed:
    clock = _Clock()
    with PostgresLog(DSN, name=name, schema=schema, clock=clock) as log:
        for start in range(0, len(records), 1000):
            burst = records[start : start + 1000]
            clock.now = burst[0].ts
            log.append(*(r.event if r.key is None else Keyed(r.event, r.key) for r in burst))
        clock.now = 0.0  # the appender's events are stamped now
        args = ["--pg-url", DSN, "--pg-schema", schema, "--pg-name", name]
        return beside_appender(args, lambda: work(log))


class _Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now or time.time()


def _compact(log: PostgresLog, selection: Selection) -> tuple[int, float]:
    held = [0.0]

    def chunk(done: Chunk) -> None:
        held.append(done.held)

    marker = log.compact("rotation", selection, progress=chunk)
    removed = marker.event.removed if marker and isinstance(marker.event, Compacted) else 0
    return removed, max(held)


def _delete(log: PostgresLog, selection: Selection) -> tuple[int, float]:
    condition, args = where(selection)
    with psycopg.connect(DSN, autocommit=True) as conn:
        started = time.perf_counter()
        cur = conn.execute(
            f"DELETE FROM {log._q.schema}.events WHERE log_id = %s AND {condition}",
            (log._log, *args),
        )
        return cur.rowcount, time.perf_counter() - started
