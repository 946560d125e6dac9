"""The append-only event log on one SQLite file (``STORE/events.db``, WAL).

Writes are group-committed: concurrent ``append`` calls queue their batches and
whichever caller takes the write lock first commits every queued batch in one
``BEGIN IMMEDIATE`` transaction (leader/follower), so there is one writer per
process without a thread hand-off on the uncontended path. Each batch stays
contiguous and is all-or-nothing. Across processes SQLite's write lock and
``busy_timeout`` serialise transactions; ``AUTOINCREMENT`` keeps ``seq`` from
ever being reused after compaction.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

from events.codec import CorruptEvent, decode, encode, type_name
from events.model import AnyEvent, Compacted, Recorded

Synchronous = Literal["NORMAL", "FULL"]
DB_NAME = "events.db"
_READ_CHUNK = 2000
_US = 1_000_000
_SMALL = 4  # bursts up to this size insert row by row (no counter reads)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    ts   INTEGER NOT NULL,              -- UTC microseconds since the epoch
    type TEXT NOT NULL,
    chat TEXT NOT NULL DEFAULT '',
    key  TEXT UNIQUE,                   -- idempotency key, e.g. chat/msg_id
    body TEXT NOT NULL                  -- msgspec JSON of the event
);
CREATE INDEX IF NOT EXISTS events_by_chat ON events(chat, seq);
CREATE TABLE IF NOT EXISTS snapshots (
    name    TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    state   BLOB NOT NULL
);
CREATE VIEW IF NOT EXISTS timeline AS
    SELECT seq, strftime('%Y-%m-%dT%H:%M:%fZ', ts / 1e6, 'unixepoch') AS at,
           type, chat, key, body
    FROM events;
"""


_INSERT = "INSERT INTO events (ts, type, chat, key, body) VALUES (?, ?, ?, ?, ?)"
_BY_KEY = "SELECT seq, ts, key, body FROM events WHERE key = ?"
_SEQUENCE = (
    "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),"
    " coalesce((SELECT max(seq) FROM events), 0))"
)


class LogError(Exception):
    """The log could not do what was asked (locked too long, disk full, corrupt)."""


class Keyed(NamedTuple):
    """An event with an idempotency key: appending an existing key is a no-op."""

    event: AnyEvent
    key: str


class _Batch:
    __slots__ = ("done", "error", "result", "rows")

    def __init__(self, rows: list[tuple[AnyEvent, str | None, str]]) -> None:
        self.rows = rows
        self.done = False
        self.result: list[Recorded] = []
        self.error: BaseException | None = None


class SQLiteLog:
    """The log on a SQLite file; safe to share between threads of one process."""

    def __init__(
        self,
        path: Path,
        *,
        synchronous: Synchronous = "NORMAL",
        busy_timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        self.path = Path(path)
        self._clock = clock
        self._writer = self._connect(busy_timeout, synchronous)
        self._reader = self._connect(busy_timeout, synchronous)
        with self._writer:
            self._writer.executescript(_SCHEMA)
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._pending: list[_Batch] = []
        self._changed = threading.Condition()
        self._last = self._query_last_seq()
        self._listeners: list[Callable[[int], None]] = []
        self._closed = False

    def _connect(self, busy_timeout: float, synchronous: Synchronous) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=busy_timeout
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={synchronous}")
            conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        except sqlite3.Error as exc:
            raise LogError(f"{self.path}: cannot open the event log ({exc})") from exc
        return conn

    # -- writing ---------------------------------------------------------

    def append(self, *items: AnyEvent | Keyed) -> list[Recorded]:
        """Append a burst atomically; returns the events as recorded, in order.

        An item whose key is already in the log is not added again: its slot in
        the result holds the event recorded earlier under that key.
        """
        if not items:
            return []
        rows: list[tuple[AnyEvent, str | None, str]] = []
        for item in items:
            event, key = (item.event, item.key) if isinstance(item, Keyed) else (item, None)
            rows.append((event, key, encode(event)))
        batch = _Batch(rows)
        with self._pending_lock:
            self._pending.append(batch)
        with self._write_lock:
            if not batch.done:
                with self._pending_lock:
                    group, self._pending = self._pending, []
                self._commit_group(group)
        if batch.error is not None:
            raise batch.error
        return batch.result

    def _commit_group(self, group: list[_Batch]) -> None:
        try:
            self._in_transaction(lambda cur: self._insert_all(cur, group))
        except BaseException as exc:
            if len(group) == 1:
                group[0].error = _as_log_error(exc)
                group[0].done = True
                return
            # One bad batch must not fail its neighbours: retry them one by one.
            for batch in group:
                batch.result = []
                self._commit_group([batch])
            return
        for batch in group:
            batch.done = True
        self._published(max((r.seq for b in group for r in b.result), default=self._last))

    def _insert_all(self, cur: sqlite3.Cursor, group: list[_Batch]) -> None:
        for batch in group:
            self._insert(cur, batch)

    def _insert(self, cur: sqlite3.Cursor, batch: _Batch) -> None:
        ts_us = round(self._clock() * _US)
        ts = ts_us / _US
        if len(batch.rows) > _SMALL and all(key is None for _, key, _ in batch.rows):
            # Under the write lock AUTOINCREMENT hands out consecutive numbers,
            # so one executemany plus the sequence counter gives every seq.
            base = _sequence(cur)
            cur.executemany(
                _INSERT, [(ts_us, type_name(e), e.chat, None, body) for e, _, body in batch.rows]
            )
            batch.result = [Recorded(base + i, ts, e) for i, (e, _, _) in enumerate(batch.rows, 1)]
            if _sequence(cur) != base + len(batch.rows):
                raise LogError("event log sequence moved during a write; log left unchanged")
            return
        result: list[Recorded] = []
        for event, key, body in batch.rows:
            existing = cur.execute(_BY_KEY, (key,)).fetchone() if key is not None else None
            if existing is not None:
                result.append(_record(existing))
                continue
            cur.execute(_INSERT, (ts_us, type_name(event), event.chat, key, body))
            result.append(Recorded(cur.lastrowid or 0, ts, event, key))
        batch.result = result

    def _in_transaction(self, work: Callable[[sqlite3.Cursor], object]) -> None:
        cur = self._writer.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            work(cur)
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")

    def _published(self, seq: int) -> None:
        with self._changed:
            self._last = max(self._last, seq)
            self._changed.notify_all()
            last = self._last
        for listener in list(self._listeners):
            listener(last)

    # -- reading ---------------------------------------------------------

    def read(
        self, after: int = 0, *, chat: str | None = None, limit: int | None = None
    ) -> Iterator[Recorded]:
        """Events with ``seq > after`` in log order, fetched in bounded chunks."""
        return scan(self._fetch, after, chats=None if chat is None else (chat,), limit=limit)

    def _fetch(self, sql: str, args: tuple[object, ...]) -> list[Row]:
        with self._read_lock:
            return self._reader.execute(sql, args).fetchall()

    def last_seq(self) -> int:
        """The highest seq committed by anyone, this process or another."""
        seq = self._query_last_seq()
        with self._changed:
            self._last = max(self._last, seq)
            return self._last

    def _query_last_seq(self) -> int:
        with self._read_lock:
            return _sequence(self._reader.cursor())

    def wait(self, after: int, timeout: float | None = None) -> bool:
        """Block until an event with ``seq > after`` exists; False on timeout.

        Appends from this process wake waiters at once; another process's
        appends are noticed when the timeout elapses (callers pass their poll
        interval), so nothing spins.
        """
        with self._changed:
            if self._last > after:
                return True
            self._changed.wait_for(lambda: self._last > after or self._closed, timeout)
        return self.last_seq() > after

    def subscribe(self, callback: Callable[[int], None]) -> Callable[[], None]:
        """Call ``callback(last_seq)`` after every commit, from the committing thread."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback)

    # -- compaction and snapshots ---------------------------------------

    def compact(
        self,
        reason: Literal["rotation", "expiry", "forget"],
        predicate: Callable[[Recorded], bool],
        *,
        chat: str = "",
        older_than: float | None = None,
    ) -> Recorded | None:
        """Delete the events ``predicate`` selects and record a ``Compacted``.

        Both happen in one transaction; ``Compacted`` events are never removed.
        Returns the ``Compacted`` event, or None when nothing matched.
        """
        with self._write_lock:
            holder: list[Recorded] = []

            def work(cur: sqlite3.Cursor) -> None:
                doomed = [
                    r
                    for r in self.read(chat=chat or None)
                    if Compacted.may_remove(r) and predicate(r)
                ]
                if not doomed:
                    return
                cur.executemany("DELETE FROM events WHERE seq = ?", ((r.seq,) for r in doomed))
                marker = Compacted.of(reason, doomed, chat=chat, older_than=older_than)
                batch = _Batch([(marker, None, encode(marker))])
                self._insert(cur, batch)
                holder.extend(batch.result)

            try:
                self._in_transaction(work)
            except BaseException as exc:
                raise _as_log_error(exc) from exc
        if not holder:
            return None
        self._published(holder[0].seq)
        return holder[0]

    def save_snapshot(self, name: str, version: int, seq: int, state: bytes) -> None:
        """Store a projection cache; snapshots are not facts and may be dropped."""
        with self._write_lock:
            self._writer.execute(
                "INSERT OR REPLACE INTO snapshots (name, version, seq, state) VALUES (?, ?, ?, ?)",
                (name, version, seq, state),
            )

    def load_snapshot(self, name: str, version: int) -> tuple[int, bytes] | None:
        with self._read_lock:
            row = self._reader.execute(
                "SELECT seq, state FROM snapshots WHERE name = ? AND version = ?", (name, version)
            ).fetchone()
        return (int(row[0]), bytes(row[1])) if row else None

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        with self._write_lock, self._read_lock:
            self._writer.close()
            self._reader.close()

    def __enter__(self) -> SQLiteLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _sequence(cur: sqlite3.Cursor) -> int:
    return int(cur.execute(_SEQUENCE).fetchone()[0])


Row = tuple[Any, ...]


def scan(
    fetch: Callable[[str, tuple[object, ...]], list[Row]],
    after: int = 0,
    *,
    chats: Sequence[str] | None = None,
    limit: int | None = None,
) -> Iterator[Recorded]:
    """Rows of an events table with ``seq > after`` (of ``chats`` if given), in log order.

    Reads in bounded chunks by keyset, so a reader never holds a long
    transaction that would stop WAL checkpoints. ``fetch(sql, args)`` runs one
    query on whatever connection the caller owns (read-write or read-only).
    """
    where = "seq > ?"
    if chats is not None:
        where += f" AND chat IN ({', '.join('?' * len(chats))})"
    remaining = limit
    while remaining is None or remaining > 0:
        size = _READ_CHUNK if remaining is None else min(_READ_CHUNK, remaining)
        rows = fetch(
            f"SELECT seq, ts, key, body FROM events WHERE {where} ORDER BY seq LIMIT ?",
            (after, *(chats or ()), size),
        )
        for row in rows:
            yield _record(row)
        if len(rows) < size:
            return
        after = rows[-1][0]
        if remaining is not None:
            remaining -= len(rows)


def _record(row: Row) -> Recorded:
    seq, ts_us, key, body = row
    try:
        event = decode(body)
    except CorruptEvent as exc:
        raise CorruptEvent(f"event {seq}: {exc}") from None
    return Recorded(int(seq), int(ts_us) / _US, event, key)


def _as_log_error(exc: BaseException) -> BaseException:
    if isinstance(exc, sqlite3.Error):
        return LogError(f"event log write failed: {exc}")
    return exc


def open_log(store: Path, **options: object) -> SQLiteLog:
    """Open (creating if needed) ``STORE/events.db``."""
    store = Path(store)
    try:
        store.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LogError(f"{store}: cannot create the store directory ({exc.strerror})") from exc
    return SQLiteLog(store / DB_NAME, **options)  # type: ignore[arg-type]
