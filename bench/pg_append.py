"""The PostgreSQL log: appends against raw psycopg on the same table, and a follower's lag.

Appends: ``PostgresLog.append`` in bursts of 100 and in single-event commits,
beside raw psycopg doing the least a correct insert needs (msgspec encode,
then COPY in one transaction per burst, or one autocommit INSERT per event)
into the same table, in the same schema, in short alternating rounds. The
ratio is what the log's own work costs: the counter row that keeps commit
order equal to seq order, the NOTIFY, group-commit bookkeeping and the
``Recorded`` results.

Follower lag: four writer processes append single events flat out while a
``PostgresReader`` follows with ``wait``/``read``; lag is the time from an
event's timestamp (taken before its commit) to the follower reading it. The
baseline is the writers' own ``append`` latency: a follower cannot know of an
event sooner than its writer does.

Needs a server: ``WABOT_BENCH_PG_DSN`` (default postgres@127.0.0.1:5432/test).
Everything goes in a schema of its own, dropped at the end.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from itertools import count as counter
from typing import Any

import msgspec
import psycopg

from bench.corpus import sample_message
from bench.measure import FLUSH_ROUNDS, median_rates, percentile
from bench.pg import DSN, scratch_schema, unreachable
from bench.report import Row
from bench.workspace import Workspace, progress
from events.model import MessageReceived
from events.postgres import PostgresLog, PostgresReader

NAME = "pg_append"
GOAL = 0.8  # of raw psycopg's rate
ROUNDS = FLUSH_ROUNDS  # the server's WAL flush is shared with every database on it
WRITERS = 4
_COLUMNS = "(log_id, seq, ts, type, chat, body)"


def run(ws: Workspace) -> list[Row]:
    if unreachable(NAME):
        return []
    with scratch_schema() as schema:
        bench = _Bench(schema)
        try:
            return [*bench.appends(ws), *bench.follower_lag(ws.sizes.pg_follow)]
        finally:
            bench.close()


class _Bench:
    def __init__(self, schema: str) -> None:
        self.schema = schema
        PostgresLog(DSN, name="setup", schema=schema).close()  # the log's own tables
        self.raw = psycopg.connect(DSN, autocommit=True)
        self.names = counter(1)
        self.encoder = msgspec.json.Encoder()

    def close(self) -> None:
        self.raw.close()

    def appends(self, ws: Workspace) -> list[Row]:
        rows = []
        for burst, events_count in ((100, ws.sizes.pg_burst), (1, ws.sizes.pg_single)):
            events = [sample_message(n) for n in range(events_count // ROUNDS)]
            what = "single commits" if burst == 1 else f"bursts of {burst}"
            raw_label = "raw psycopg INSERT" if burst == 1 else "raw psycopg COPY"
            progress(f"{NAME}: {events_count:,} events, {what}")
            ours, raw = median_rates(
                len(events),
                lambda: self._through_log(events, burst),  # noqa: B023
                lambda: self._raw(events, burst),  # noqa: B023
                repeats=ROUNDS,
            )
            rows.append(
                Row(
                    bench=NAME,
                    measure=f"PostgresLog.append, {what}",
                    value=ours,
                    unit="ev/s",
                    baseline=raw,
                    baseline_label=raw_label,
                    target=GOAL * raw,
                    note=f"{len(events):,} events x {ROUNDS} alternating rounds, median;"
                    f" target {GOAL}x raw",
                )
            )
        return rows

    def _through_log(self, events: list[MessageReceived], burst: int) -> float:
        log = PostgresLog(DSN, name=f"ours{next(self.names)}", schema=self.schema)
        try:
            started = time.perf_counter()
            for start in range(0, len(events), burst):
                log.append(*events[start : start + burst])
            return time.perf_counter() - started
        finally:
            log.close()

    def _raw(self, events: list[MessageReceived], burst: int) -> float:
        conn, s = self.raw, self.schema
        row = conn.execute(
            f"INSERT INTO {s}.logs (name) VALUES (%s) RETURNING id", (f"raw{next(self.names)}",)
        ).fetchone()
        assert row is not None
        log, seq = row[0], counter(1)
        insert = f"INSERT INTO {s}.events {_COLUMNS} VALUES (%s, %s, %s, %s, %s, %s)"
        started = time.perf_counter()
        for start in range(0, len(events), burst):
            ts = round(time.time() * 1_000_000)
            rows = [
                (log, next(seq), ts, type(e).__name__, e.chat, self.encoder.encode(e).decode())
                for e in events[start : start + burst]
            ]
            if burst == 1:
                conn.execute(insert, rows[0])
                continue
            with (
                conn.transaction(),
                conn.cursor().copy(f"COPY {s}.events {_COLUMNS} FROM STDIN") as copy,
            ):
                for r in rows:
                    copy.write_row(r)
        return time.perf_counter() - started

    def follower_lag(self, per_writer: int) -> list[Row]:
        total = WRITERS * per_writer
        progress(f"{NAME}: follower lag, {WRITERS} writer processes x {per_writer:,} appends")
        name = f"follow{next(self.names)}"
        PostgresLog(DSN, name=name, schema=self.schema).close()
        lags: list[float] = []
        with PostgresReader(DSN, name=name, schema=self.schema) as follower:
            reader = threading.Thread(target=_follow, args=(follower, total, lags))
            reader.start()
            procs = [self._writer(name, n, per_writer) for n in range(WRITERS)]
            spent = [s for p in procs for s in _latencies(p)]
            reader.join(timeout=120)
        if len(lags) != total:
            raise RuntimeError(f"the follower saw {len(lags)} of {total} events")
        note = f"{WRITERS} writers x {per_writer:,} single-event appends, flat out"
        return [
            Row(
                bench=NAME,
                measure=f"follower lag p{q}, {WRITERS} writer processes",
                value=percentile(lags, q) * 1000,
                unit="ms",
                baseline=percentile(spent, q) * 1000,
                baseline_label=f"writers' own append p{q}",
                better="lower",
                note=note,
            )
            for q in (50, 99)
        ]

    def _writer(self, name: str, n: int, per_writer: int) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.pg_writer",
                *("--dsn", DSN, "--schema", self.schema, "--name", name),
                *("--tag", f"w{n}", "--count", str(per_writer)),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )


def _follow(follower: PostgresReader, total: int, lags: list[float]) -> None:
    """Read every event as soon as ``wait`` says it exists; one lag per event."""
    after = 0
    deadline = time.monotonic() + 120
    while len(lags) < total and time.monotonic() < deadline:
        if follower.wait(after, timeout=1.0):
            for rec in follower.read(after):
                lags.append(time.time() - rec.ts)
                after = rec.seq


def _latencies(proc: subprocess.Popen[str]) -> list[Any]:
    out, _ = proc.communicate(timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"writer exited with status {proc.returncode}")
    spent: list[Any] = json.loads(out)
    return spent
