"""Log round trips per answered message, through the real daemon, on SQLite and PostgreSQL.

The daemon runs as ``bench.counting_daemon``: ``python -m pipeline run
--transport stdio`` with every log call counted. Messages go one at a time to
one chat (debounce 0, instant LLM), each answered before the next; the counts
are read after a warm-up and at the end, so start-up is left out. A read is a
call that goes to the database (``read``, ``last_seq``, ``wait``); a commit is
an ``append``. The baseline is the write-ahead minimum: the commits one
answered message needs (message, request, answer and plan, sent).

On SQLite it also times each message from the stdin write to its LLM request
reaching the fake server, against a direct httpx POST of the same body to
arrival (the floor under the daemon's own work). On PostgreSQL the same time
is printed for information (no target: the server's round trips are in it),
with the SQL statements one message sends, each a round trip (the log calls
above hide a commit that takes several).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import msgspec

from bench.counting_daemon import Counts
from bench.daemon import Daemon, TimedServer, app_config, message_line, user_jid
from bench.latency import direct_arrivals
from bench.measure import percentile
from bench.pg import DSN, scratch_schema, unreachable
from bench.report import Row
from bench.workspace import Workspace, progress
from events.postgres import with_schema

NAME = "roundtrips"
WARM_UP = 5
REPLY_TIMEOUT = 30.0
COMMITS_NEEDED = 4  # MessageReceived; LlmRequested; LlmCompleted + ReplyPlanned; ReplySent
TARGET_READS = 5.0
TARGET_LATENCY_RATIO = 4.0  # stdin -> LLM request p50, times a direct POST's
TARGET_MODULES = 30  # the project's modules one answered message runs code in
_PROGRAM = (sys.executable, "-m", "bench.counting_daemon")
_DUMP_WAIT = 10.0


def run(ws: Workspace) -> list[Row]:
    count = ws.sizes.messages
    rows = _measure(ws, "SQLite", count, {})
    rows.append(_modules(ws))
    if not unreachable(NAME):
        with scratch_schema() as schema:
            rows += _measure(ws, "PostgreSQL", count, {"WABOT_LOG_URL": with_schema(DSN, schema)})
    return rows


def _measure(ws: Workspace, backend: str, count: int, env: dict[str, str]) -> list[Row]:
    progress(f"{NAME}: {count} messages one at a time, log calls counted ({backend})")
    folder = ws.scratch(f"roundtrips-{backend.lower()}")
    counts_file = folder / "counts.json"
    program = (*_PROGRAM, str(counts_file))
    config = app_config(1)
    with TimedServer() as server:
        with Daemon(folder, config, server, env, program=program) as daemon:
            _ask(daemon, server, 0, WARM_UP)
            before = _counts(daemon.pid, counts_file)
            to_request = _ask(daemon, server, WARM_UP, count)
            after = _counts(daemon.pid, counts_file)
            status = daemon.stop()
        request = server.requests[-1]
        direct = direct_arrivals(server, request.path, request.raw, count) if not env else []
    note = f"{count} messages after {WARM_UP} warm-up, {backend}"
    if status != 0:
        note += f"; daemon exit status {status}"
    rows = [_latency(backend, to_request, direct, note)]
    if env:
        rows.append(_statements(backend, after, before, count, note))
    reads = (after.reads - before.reads) / count
    empty = (after.empty_reads - before.empty_reads) / count
    commits = (after.commits - before.commits) / count
    return [
        *rows,
        Row(
            bench=NAME,
            measure=f"log reads per answered message ({backend})",
            value=reads,
            unit="calls",
            target=TARGET_READS,
            better="lower",
            note=f"{note}; {empty:.1f} of them empty",
        ),
        Row(
            bench=NAME,
            measure=f"log round trips per answered message ({backend})",
            value=reads + commits,
            unit="calls",
            baseline=COMMITS_NEEDED,
            baseline_label="write-ahead commits",
            better="lower",
            note=f"{note}; {commits:.1f} commits",
        ),
    ]


def _modules(ws: Workspace) -> Row:
    """The project's modules one answered message runs code in (a profiled run of its own)."""
    progress(f"{NAME}: the modules one message runs code in")
    folder = ws.scratch("roundtrips-modules")
    counts_file = folder / "counts.json"
    program = (*_PROGRAM, str(counts_file))
    env = {"WABOT_BENCH_MODULES": "1"}
    with TimedServer() as server, Daemon(folder, app_config(1), server, env, program=program) as d:
        _ask(d, server, 0, WARM_UP)
        os.kill(d.pid, signal.SIGUSR2)
        _ask(d, server, WARM_UP, 1)
        touched = _counts(d.pid, counts_file).modules
        d.stop()
    return Row(
        bench=NAME,
        measure="project modules one answered message runs code in",
        value=len(touched),
        unit="calls",
        target=TARGET_MODULES,
        better="lower",
        note=" ".join(touched),
    )


def _latency(backend: str, ours: list[float], direct: list[float], note: str) -> Row:
    """The p50 against a direct POST's (SQLite); alone, for information, without one."""
    p50 = percentile(ours, 50) * 1000
    measure = f"stdin -> LLM request p50 ({backend})"
    if not direct:
        return Row(bench=NAME, measure=measure, value=p50, unit="ms", better="lower", note=note)
    base = percentile(direct, 50) * 1000
    return Row(
        bench=NAME,
        measure=measure,
        value=p50,
        unit="ms",
        baseline=base,
        baseline_label="httpx POST -> arrival",
        target=base * TARGET_LATENCY_RATIO,
        better="lower",
        note=note,
    )


def _statements(backend: str, after: Counts, before: Counts, count: int, note: str) -> Row:
    """The SQL statements one message sends (each a round trip), for information."""
    sent = (after.statements - before.statements) / count
    appending = (after.append_statements - before.append_statements) / count
    return Row(
        bench=NAME,
        measure=f"SQL statements per answered message ({backend})",
        value=sent,
        unit="calls",
        better="lower",
        note=f"{note}; {appending:.1f} of them in appends; each one round trip",
    )


def _ask(daemon: Daemon, server: TimedServer, first: int, count: int) -> list[float]:
    """Ask one at a time; the seconds from each stdin write to its LLM request's arrival."""
    chat = user_jid(0)
    spans = []
    for n in range(first, first + count):
        seen = len(server.arrivals())
        started = daemon.write(message_line(n, chat, f"question {n}"))
        sent = daemon.next_sent(REPLY_TIMEOUT)
        if sent.line.get("reply_to") != f"B{n:06d}":
            raise RuntimeError(f"unexpected daemon output: {sent.line}")
        spans.append(server.arrivals()[seen] - started)
    return spans


def _counts(pid: int, path: Path) -> Counts:
    """Ask the child for its counts (SIGUSR1) and wait for the file it writes."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + _DUMP_WAIT
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError, msgspec.DecodeError):
            return msgspec.json.decode(path.read_bytes(), type=Counts)
        time.sleep(0.01)  # a file another process writes: nothing to await here
    raise RuntimeError(f"no counts from the daemon within {_DUMP_WAIT:.0f} s")
