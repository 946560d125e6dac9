"""Copying a log between backends row for row: every seq, key, body and snapshot kept.

``migrate`` moves a store's SQLite log into PostgreSQL, or back for a backup.
Events are copied as stored (the body text is never re-encoded), with their
seq, time and idempotency key, plus the counter of handed-out seqs (so a seq
freed by compaction is never handed out again) and every snapshot. The source
is read in one transaction, a consistent picture even beside a running
writer; the target is written in one, so a failed copy leaves it empty. Both
sides are then summed up the same way (counts and a sha256 over every row and
snapshot) and must agree.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple, Protocol

import msgspec

from events.protocol import LogError, NoLog
from events.sqlite import DB_NAME, open_store
from events.sqlite import SEQUENCE as _SEQUENCE

CHUNK = 5000
RawRow = tuple[int, int, str, str, str | None, str]  # seq, ts (µs), type, chat, key, body
Snapshot = tuple[str, int, int, bytes]  # name, version, seq, state


class Summary(NamedTuple):
    events: int
    snapshots: int
    counter: int  # highest seq ever handed out
    sha256: str  # over every row and snapshot, in order


class Side(Protocol):
    """One end of a copy; ``where`` names it in messages (never with a password)."""

    where: str

    def export(self) -> tuple[int, Iterator[list[RawRow]], list[Snapshot]]:
        """The counter, the rows in seq order (chunked) and the snapshots, as of one moment."""
        ...

    def is_empty(self) -> bool: ...

    def load(self, counter: int, chunks: Iterable[list[RawRow]], snapshots: list[Snapshot]) -> None:
        """Write everything in one transaction; refuse if the target is no longer empty."""
        ...


def copy(source: Side, target: Side) -> Summary:
    """Copy ``source`` into the empty ``target``, then check both sum up the same."""
    if not target.is_empty():
        raise LogError(f"{target.where} already holds events; refusing to overwrite it")
    tally = _Tally()
    counter, chunks, snapshots = source.export()
    target.load(counter, tally.rows(chunks), snapshots)
    sent = tally.summary(counter, snapshots)
    landed = summarise(target)
    if landed != sent:
        raise LogError(f"copy to {target.where} does not match its source: {sent} != {landed}")
    return sent


def summarise(side: Side) -> Summary:
    tally = _Tally()
    counter, chunks, snapshots = side.export()
    for _ in tally.rows(chunks):
        pass
    return tally.summary(counter, snapshots)


class _Tally:
    def __init__(self) -> None:
        self.count = 0
        self.hash = hashlib.sha256()

    def rows(self, chunks: Iterable[list[RawRow]]) -> Iterator[list[RawRow]]:
        for chunk in chunks:
            for row in chunk:
                self.hash.update(msgspec.json.encode(row) + b"\n")
            self.count += len(chunk)
            yield chunk

    def summary(self, counter: int, snapshots: list[Snapshot]) -> Summary:
        for name, version, seq, state in sorted(snapshots):
            self.hash.update(msgspec.json.encode((name, version, seq, state.hex())) + b"\n")
        return Summary(self.count, len(snapshots), counter, self.hash.hexdigest())


class SQLiteSide:
    """``STORE/events.db``: read as it is, or created (with its store) for a copy to land in."""

    def __init__(self, store: Path) -> None:
        self.store = Path(store)
        self.path = self.store / DB_NAME
        self.where = str(self.path)

    def export(self) -> tuple[int, Iterator[list[RawRow]], list[Snapshot]]:
        if not self.path.is_file():
            raise NoLog(f"{self.path}: no event log here (wrong --store?)")
        conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
        conn.execute("BEGIN")  # one read transaction: one consistent picture
        counter = int(conn.execute(_SEQUENCE).fetchone()[0])
        snapshots = [
            (str(n), int(v), int(s), bytes(st))
            for n, v, s, st in conn.execute("SELECT name, version, seq, state FROM snapshots")
        ]
        return counter, self._rows(conn), snapshots

    @staticmethod
    def _rows(conn: sqlite3.Connection) -> Iterator[list[RawRow]]:
        try:
            after = 0
            while rows := conn.execute(_READ, (after, CHUNK)).fetchall():
                yield [(int(s), int(t), ty, c, k, b) for s, t, ty, c, k, b in rows]
                after = int(rows[-1][0])
        finally:
            conn.close()

    def is_empty(self) -> bool:
        if not self.path.is_file():
            return True
        conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            return not _filled(conn)
        except sqlite3.Error as exc:
            raise LogError(f"{self.path}: cannot read it ({exc})") from None
        finally:
            conn.close()

    def load(self, counter: int, chunks: Iterable[list[RawRow]], snapshots: list[Snapshot]) -> None:
        open_store(self.store).close()  # the store, the log's schema and its file settings
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            self._fill(conn, counter, chunks, snapshots)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()

    def _fill(
        self,
        conn: sqlite3.Connection,
        counter: int,
        chunks: Iterable[list[RawRow]],
        snapshots: list[Snapshot],
    ) -> None:
        if _filled(conn):  # checked again under the write lock
            raise LogError(f"{self.path} already holds events; refusing to overwrite it")
        for chunk in chunks:
            conn.executemany(_INSERT, chunk)
        conn.execute("DELETE FROM sqlite_sequence WHERE name = 'events'")
        conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('events', ?)", (counter,))
        conn.executemany(
            "INSERT INTO snapshots (name, version, seq, state) VALUES (?, ?, ?, ?)", snapshots
        )


def _filled(conn: sqlite3.Connection) -> int:
    """Seqs ever handed out plus snapshots: 0 only for a log never written."""
    return int(
        conn.execute(f"SELECT ({_SEQUENCE}) + (SELECT count(*) FROM snapshots)").fetchone()[0]
    )


_READ = "SELECT seq, ts, type, chat, key, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?"
_INSERT = "INSERT INTO events (seq, ts, type, chat, key, body) VALUES (?, ?, ?, ?, ?, ?)"
