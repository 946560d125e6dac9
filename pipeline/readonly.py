"""The event log opened for reading only, for ``audit``, ``stats`` and ``replay.py``.

These commands may run next to the daemon and must never change the log: the
connection is SQLite's ``mode=ro``, so even a bug here cannot append, and no
schema is created on a store that has no log yet.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from events.codec import CorruptEvent
from events.log import DB_NAME, scan
from events.model import Recorded


class NoLog(Exception):
    """The store holds no readable event log (a user mistake: wrong ``--store``)."""


class ReadOnlyLog:
    """Reads ``STORE/events.db``; fits ``projections.runner.EventLog``."""

    def __init__(self, store: Path) -> None:
        self.path = Path(store) / DB_NAME
        if not self.path.is_file():
            raise NoLog(f"{self.path}: no event log here (wrong --store, or the bot never ran)")
        try:
            self._conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
            self._conn.execute("SELECT 1 FROM events LIMIT 1").fetchall()
        except sqlite3.Error as exc:
            raise NoLog(f"{self.path}: cannot read the event log ({exc})") from None

    def read(self, after: int = 0, *, chat: str | None = None) -> Iterator[Recorded]:
        """Events with ``seq > after`` in log order, in bounded chunks."""
        return self._read(after, () if chat is None else (chat,))

    def read_for(self, chat: str) -> Iterator[Recorded]:
        """One chat's events and the chat-less ones (configs, connection, compactions).

        All that audit and replay need of a chat, without holding the whole log.
        """
        return self._read(0, (chat, ""))

    def chats(self) -> set[str]:
        rows = self._conn.execute("SELECT DISTINCT chat FROM events WHERE chat != ''")
        return {chat for (chat,) in rows}

    def _read(self, after: int, chats: tuple[str, ...]) -> Iterator[Recorded]:
        try:
            yield from scan(self._fetch, after, chats=chats or None)
        except CorruptEvent as exc:
            raise NoLog(f"{self.path}: {exc}") from None

    def _fetch(self, sql: str, args: tuple[object, ...]) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql, args).fetchall()

    def last_seq(self) -> int:
        return int(self._conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])

    def load_snapshot(self, name: str, version: int) -> tuple[int, bytes] | None:
        row = self._conn.execute(
            "SELECT seq, state FROM snapshots WHERE name = ? AND version = ?", (name, version)
        ).fetchone()
        return (int(row[0]), bytes(row[1])) if row else None

    def save_snapshot(self, name: str, version: int, seq: int, state: bytes) -> None:
        """Never stores anything: snapshots are a cache, and this log is not ours to write."""

    def size_bytes(self) -> int:
        """The log's footprint on disk: the database file plus its write-ahead log."""
        wal = self.path.with_name(self.path.name + "-wal")
        return sum(p.stat().st_size for p in (self.path, wal) if p.is_file())

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ReadOnlyLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
