"""Ten daemons (ten WhatsApp numbers) on one PostgreSQL database, 50 chats each, 1 s answers.

Each daemon is ``python -m pipeline run --transport stdio`` with its own
number and ``WABOT_LOG_URL`` naming the same database: ten logs in one schema,
ten leases. Every chat of every daemon sends one message at the same moment
and every answer takes ``llm_delay`` seconds, so the best wall time is that of
one daemon alone, ``ceil(chats / max_concurrent_chats) * llm_delay``: the
baseline. Each daemon answers one warm-up chat first, as in ``concurrency``.
The same ten daemons then run again, each on a SQLite store of its own: what
the shared database adds, apart from the CPUs they all share. Peak connections
are sampled from ``pg_stat_activity`` while they run, against the three a
daemon is built to hold (lease, writer, reader).

Needs a server: ``WABOT_BENCH_PG_DSN`` (default postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import contextlib
import math
import threading

import psycopg

from bench.daemon import Daemon, TimedServer, app_config, message_line, user_jid
from bench.pg import DSN, scratch_schema, unreachable
from bench.report import Row
from bench.workspace import Workspace, progress
from events.postgres import Lease, with_schema
from tests.llm_server import Reply

NAME = "pg_daemons"
DAEMONS = 10
LIMIT = 8  # polling.max_concurrent_chats
PER_DAEMON = 3  # connections a daemon holds: its lease, the log's writer and reader
TOLERANCE = 1.15


def run(ws: Workspace) -> list[Row]:
    if unreachable(NAME):
        return []
    chats, delay = ws.sizes.chats, ws.sizes.llm_delay
    ideal = math.ceil(chats / LIMIT) * delay
    numbers = [f"4917000001{n:02d}" for n in range(DAEMONS)]
    progress(f"{NAME}: {DAEMONS} daemons x {chats} chats at once, {delay:g} s LLM")
    with scratch_schema() as schema:
        url = with_schema(DSN, schema)
        tag = f"wabot-bench-{schema}"  # the log connections' application_name (PGAPPNAME)
        leases = [Lease(url, name=n).tag for n in numbers]
        with TimedServer(backlog=256) as server:
            with _Peak(tag, leases) as peak:
                pg_env = {"WABOT_LOG_URL": url, "PGAPPNAME": tag}
                wall, statuses = _serve(ws, server, numbers, env=pg_env, chats=chats, delay=delay)
            progress(f"{NAME}: the same daemons, each on a SQLite store of its own")
            local, _ = _serve(ws, server, numbers, env={}, chats=chats, delay=delay)
    note = (
        f"{DAEMONS} daemons x {chats} chats x 1 message, {delay:g} s per answer,"
        f" max_concurrent_chats {LIMIT}"
    )
    if any(statuses):
        note += f"; exit statuses {statuses}"
    return [
        Row(
            bench=NAME,
            measure=f"wall time, {DAEMONS} numbers on one database",
            value=wall,
            unit="s",
            baseline=ideal,
            baseline_label="ideal of one daemon, ceil(chats/limit) x delay",
            target=ideal * TOLERANCE,
            better="lower",
            note=note,
        ),
        Row(
            bench=NAME,
            measure="  the same on PostgreSQL, against SQLite",
            value=wall,
            unit="s",
            baseline=local,
            baseline_label="the same daemons, each on its own SQLite store",
            better="lower",
            note="information: what one shared database costs beside the machine's CPUs",
        ),
        Row(
            bench=NAME,
            measure="peak PostgreSQL connections of the daemons",
            value=peak.most,
            unit="calls",
            baseline=DAEMONS * PER_DAEMON,
            baseline_label=f"{PER_DAEMON} per daemon (lease, writer, reader)",
            target=DAEMONS * PER_DAEMON,
            better="lower",
            note="sampled from pg_stat_activity every 20 ms while they ran",
        ),
    ]


def _serve(
    ws: Workspace,
    server: TimedServer,
    numbers: list[str],
    *,
    env: dict[str, str],
    chats: int,
    delay: float,
) -> tuple[float, list[int]]:
    """Wall time from the first message to the last reply of every daemon; exit statuses."""
    with contextlib.ExitStack() as stack:
        daemons = []
        for number in numbers:
            config = app_config(chats + 1, max_concurrent_chats=LIMIT)
            config["whatsapp"] = {"phone_number": number}
            daemons.append(Daemon(ws.scratch(f"{NAME}-{number}"), config, server, env))
        for daemon in daemons:  # all start at once (on PostgreSQL each waits out its settle)
            stack.enter_context(daemon)
        # As in ``concurrency``: a fresh store's first call goes out alone (the
        # budget has no cost estimate yet), so each daemon answers one chat first.
        for daemon in daemons:
            daemon.write(message_line(chats, user_jid(chats), "warming up"))
        for daemon in daemons:
            daemon.next_sent(60)
        server.script(*[Reply(delay=delay)] * (chats * len(daemons)))
        lines = b"".join(message_line(n, user_jid(n), f"hello from chat {n}") for n in range(chats))
        started = min(daemon.write(lines) for daemon in daemons)
        replies = [daemon.next_sent(60 + chats * 4) for daemon in daemons for _ in range(chats)]
        statuses = [daemon.stop() for daemon in daemons]
    return max(sent.at for sent in replies) - started, statuses


class _Peak:
    """Samples how many connections the daemons hold, in a thread, until closed."""

    def __init__(self, tag: str, leases: list[str]) -> None:
        self._query = (
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
            " OR application_name LIKE ANY(%s)"
        )
        self._args = (tag, [f"wabot % {lease}%" for lease in leases])
        self._stop = threading.Event()
        self.most = 0
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> _Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _sample(self) -> None:
        with psycopg.connect(DSN, autocommit=True) as conn:
            while not self._stop.wait(0.02):
                row = conn.execute(self._query, self._args).fetchone()
                self.most = max(self.most, int(row[0]) if row else 0)
