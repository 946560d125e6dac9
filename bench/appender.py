"""Child process of the compaction benchmark: append one event every 5 ms, time every append.

``python -m bench.appender --db FILE`` (SQLite) or ``--pg-url URL --pg-schema S
--pg-name N`` (PostgreSQL) opens the log as the daemon would (default busy
timeout), prints ``ready`` after its first append and appends until stdin is
closed. Then it prints one JSON line: for every append, when it started
(``time.monotonic()``, which is the same clock in every process) and how long
it took, and the failures with their messages.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import msgspec

from events.model import MessageReceived
from events.protocol import LogError, LogWriter

PERIOD = 0.005  # seconds between two appends, as a busy daemon's
CHAT = "491709999999@s.whatsapp.net"


class Appends(msgspec.Struct):
    """What the child saw: ``(started, seconds)`` per append, and the failures."""

    timed: list[tuple[float, float]]
    failures: list[tuple[float, str]]


def _open(args: argparse.Namespace) -> LogWriter:
    if args.db is not None:
        from events.sqlite import SQLiteLog  # noqa: PLC0415

        return SQLiteLog(Path(args.db))
    from events.postgres import PostgresLog  # noqa: PLC0415

    return PostgresLog(args.pg_url, name=args.pg_name, schema=args.pg_schema)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.appender")
    parser.add_argument("--db")
    parser.add_argument("--pg-url")
    parser.add_argument("--pg-schema")
    parser.add_argument("--pg-name")
    args = parser.parse_args()
    log = _open(args)
    stop = threading.Event()

    def until_stdin_closes() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=until_stdin_closes, daemon=True).start()
    seen = Appends([], [])
    due = time.monotonic()
    n = 0
    while not stop.is_set():
        due = max(due + PERIOD, time.monotonic())
        time.sleep(max(0.0, due - time.monotonic()))
        event = MessageReceived(chat=CHAT, msg_id=f"A{n}", sender=CHAT, text=f"append {n}")
        started = time.monotonic()
        try:
            log.append(event)
        except LogError as exc:
            seen.failures.append((started, str(exc)))
        seen.timed.append((started, time.monotonic() - started))
        if n == 0:
            print("ready", flush=True)
        n += 1
    log.close()
    sys.stdout.buffer.write(msgspec.json.encode(seen) + b"\n")


if __name__ == "__main__":
    main()
