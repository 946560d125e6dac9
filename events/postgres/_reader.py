"""The read-only PostgreSQL log, and the connection handling it shares with the writer.

``PostgresReader`` is what the offline tools (audit, stats, replay) open: its
connections set ``default_transaction_read_only``, so they cannot change the
log even by mistake, and opening it creates nothing (``NoLog`` if absent).
Reads go in keyset chunks on an autocommit connection, so no transaction stays
open between chunks (it would hold back vacuum on a busy server).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Self

import psycopg

from events.codec import Row, record
from events.model import Recorded
from events.postgres._schema import Target, connect, log_id, one_line, target
from events.postgres._sql import Queries
from events.postgres._wait import Listener, channel
from events.protocol import LogError, LogUnavailable

READ_CHUNK = 2000
POLL = 0.5  # seconds a waiter may lag behind a commit whose NOTIFY was lost


class Link:
    """One connection used by one thread at a time, reopened if it broke."""

    def __init__(self, conn: psycopg.Connection[Any], reopen: Callable[[], Any]) -> None:
        self._conn = conn
        self._reopen = reopen
        self._closed = False
        self.lock = threading.Lock()

    @contextmanager
    def use(self, where: Target) -> Iterator[psycopg.Connection[Any]]:
        """The connection, with driver errors turned into one-line ``LogError``s."""
        with self.lock:
            if self._closed:
                raise LogError(f"{where.where}: the event log is closed")
            if self._conn.closed:
                self._conn = self._reopen()  # a daemon outlives a server restart
            try:
                yield self._conn
            except psycopg.Error as exc:
                raise _log_error(where, exc, self._conn) from exc

    def close(self) -> None:
        with self.lock:
            self._closed = True
            self._conn.close()


def _log_error(where: Target, exc: psycopg.Error, conn: psycopg.Connection[Any]) -> LogError:
    if isinstance(exc, psycopg.errors.LockNotAvailable):
        return LogError(f"{where.where}: another writer held the log longer than lock_timeout")
    if conn.closed or conn.broken:
        # The server went away (restart, network, pg_terminate_backend): the
        # next use reconnects, so the same call may well succeed.
        return LogUnavailable(f"{where.where}: lost the connection to PostgreSQL ({one_line(exc)})")
    return LogError(f"{where.where}: event log query failed ({one_line(exc)})")


class PostgresReader:
    """One named log in a PostgreSQL database, opened read-only; a ``LogReader``."""

    def __init__(
        self, url: str, *, name: str, schema: str | None = None, poll: float = POLL
    ) -> None:
        where = target(url, schema)
        conn = connect(where, read_only=True)
        try:
            found = log_id(conn, where, name, create=False)
        except BaseException:
            conn.close()
            raise
        self._setup(where, name, found, Link(conn, lambda: connect(where, read_only=True)), poll)

    def _setup(self, where: Target, name: str, log: int, link: Link, poll: float) -> None:
        self.where = where
        self.name = name
        self._log = log
        self._q = Queries(where.schema)
        self._link = link
        self._channel = channel(where.schema, name)
        self._changed = threading.Condition()
        self._last = 0
        self._closed = False
        self._listener = Listener(
            lambda: connect(where), self._channel, self._counter, self._heard, poll
        )

    def _fetch(self, sql: str, args: Sequence[Any] | Mapping[str, Any]) -> list[Row]:
        """Run one query; a dropped connection is reopened and the query run once more."""
        try:
            return self._query(sql, args)
        except LogUnavailable:
            return self._query(sql, args)  # reads change nothing: trying again is safe

    def _query(self, sql: str, args: Sequence[Any] | Mapping[str, Any]) -> list[Row]:
        with self._link.use(self.where) as conn:
            rows: list[Row] = conn.execute(sql, args).fetchall()
            return rows

    def read(
        self, after: int = 0, *, chats: Collection[str] | None = None, limit: int | None = None
    ) -> Iterator[Recorded]:
        """Events with ``seq > after`` (of ``chats`` if given) in log order, in bounded chunks."""
        chosen = sorted(chats) if chats is not None else None
        remaining = limit
        while remaining is None or remaining > 0:
            size = READ_CHUNK if remaining is None else min(READ_CHUNK, remaining)
            if chosen is None:
                rows = self._fetch(self._q.read, (self._log, after, size))
            else:
                rows = self._fetch(self._q.read_chats, (self._log, after, chosen, size))
            for row in rows:
                yield record(row)
            if len(rows) < size:
                return
            after = int(rows[-1][0])
            if remaining is not None:
                remaining -= len(rows)

    def _counter(self, conn: psycopg.Connection[Any]) -> int:
        row = conn.execute(self._q.last_seq, (self._log,)).fetchone()
        return int(row[0]) if row else 0

    def last_seq(self) -> int:
        """The highest seq committed by anyone (compacted ones included)."""
        rows = self._fetch(self._q.last_seq, (self._log,))
        return self._heard(int(rows[0][0]) if rows else 0)

    def _heard(self, seq: int) -> int:
        """Record that ``seq`` is committed and wake the waiters it concerns."""
        with self._changed:
            if seq > self._last:
                self._last = seq
                self._changed.notify_all()
            return self._last

    def wait(self, after: int, timeout: float | None = None) -> bool:
        """Block until an event with ``seq > after`` exists; False on timeout.

        This process's appends wake waiters at once; another's through NOTIFY,
        or within ``poll`` seconds if the notification was lost.
        """
        with self._changed:
            if self._last > after:
                return True
        self._listener.start()
        with self._changed:
            self._changed.wait_for(lambda: self._last > after or self._closed, timeout)
            if self._last > after or self._closed:
                return self._last > after
        return self.last_seq() > after

    def chats(self) -> set[str]:
        return {chat for (chat,) in self._fetch(self._q.chats, {"log": self._log})}

    def media(self) -> set[str]:
        return {str(sha) for (sha,) in self._fetch(self._q.media, {"log": self._log})}

    def load_snapshot(self, name: str, version: int) -> tuple[int, bytes] | None:
        rows = self._fetch(self._q.load_snapshot, (self._log, name, version))
        return (int(rows[0][0]), bytes(rows[0][1])) if rows else None

    def size_bytes(self) -> int:
        """The schema's tables with their indexes and TOAST: shared by all its logs."""
        return int(self._fetch(self._q.size, ())[0][0])

    def close(self) -> None:
        with self._changed:
            if self._closed:
                return
            self._closed = True
            self._changed.notify_all()
        self._listener.stop(wake=self._wake_listener)
        self._link.close()

    def _wake_listener(self) -> None:
        self._fetch(self._q.notify, (self._channel,))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
