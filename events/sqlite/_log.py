"""The event log on one SQLite file (``STORE/events.db``, WAL): read-only and read-write.

``SQLiteReader`` opens the file with SQLite's ``mode=ro``, so a tool that only
reads (audit, stats, replay, the web console) can run beside the daemon and
cannot change the log even by mistake. ``SQLiteLog`` adds writing.

Writes are group-committed (``events.group_commit``): concurrent ``append``
calls share one ``BEGIN IMMEDIATE`` transaction. With ``synchronous=NORMAL`` a
commit does not sync, so ``append_now`` lets an event loop commit without a
thread hand-off whenever no writer holds the lock. Across processes SQLite's write lock and
writers that find it taken wait their turn (``_turns``) for up to
``busy_timeout``; ``AUTOINCREMENT`` keeps ``seq`` from ever being reused after
compaction. Compaction deletes in short transactions and lets waiting writers
go first before each, so appends from this process or another interleave
with it and none waits for long.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Literal, Self, TypeVar

from events.codec import US, Row, encode, record, type_name
from events.compaction import Pending, Running, Tally, announces, answer, finish_left, forgets
from events.group_commit import Batch, GroupCommit
from events.model import AnyEvent, Compacted, Recorded
from events.owner_only import private_dir, private_file, tighten
from events.protocol import (
    CompactReason,
    Guard,
    Keyed,
    LogError,
    NoLog,
    Progress,
    Selection,
)
from events.sqlite._checkpoint import Checkpointer, empty_wal
from events.sqlite._compact import compact_rows
from events.sqlite._schema import (
    BY_KEY,
    COMPACTED_SINCE,
    DROP_SNAPSHOTS,
    DROP_SNAPSHOTS_BEFORE,
    INSERT,
    MARKERS_AFTER,
    MEDIA,
    PENDING,
    PENDING_ADD,
    PENDING_DONE,
    PENDING_ONE,
    SAVE_SNAPSHOT,
    SCHEMA,
    SEQUENCE,
    SNAPSHOT,
    busy_timeout,
    connect,
    scan,
    sequence,
)
from events.sqlite._turns import Turnstile, begin, begin_now

Synchronous = Literal["NORMAL", "FULL"]
DB_NAME = "events.db"
_SMALL = 4  # bursts up to this size insert row by row (no counter reads)
_READ_POLL = 0.05  # how often a read-only waiter looks for another process's commits
_PURGE_WAIT = 10.0  # how long purge waits for the WAL to be free to empty

_T = TypeVar("_T")


class SQLiteReader:
    """``STORE/events.db`` opened read-only (SQLite ``mode=ro``); a ``LogReader``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise NoLog(f"{self.path}: no event log here (wrong --store, or the bot never ran)")
        try:
            self._reader = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
            )
            self._reader.execute("SELECT 1 FROM events LIMIT 1").fetchall()
        except sqlite3.Error as exc:
            raise NoLog(f"{self.path}: cannot read the event log ({exc})") from None
        self._read_lock = threading.Lock()

    def read(
        self, after: int = 0, *, chats: Collection[str] | None = None, limit: int | None = None
    ) -> Iterator[Recorded]:
        """Events with ``seq > after`` in log order, fetched in bounded chunks."""
        return scan(self._fetch, after, chats=chats, limit=limit)

    def _fetch(self, sql: str, args: tuple[object, ...]) -> list[Row]:
        with self._read_lock:
            return self._reader.execute(sql, args).fetchall()

    def last_seq(self) -> int:
        return int(self._fetch(SEQUENCE, ())[0][0])

    def wait(self, after: int, timeout: float | None = None) -> bool:
        """Another process writes: look every ``_READ_POLL`` seconds until ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.last_seq() <= after:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            time.sleep(_READ_POLL if left is None else min(_READ_POLL, left))
        return True

    def chats(self) -> set[str]:
        return {chat for (chat,) in self._fetch("SELECT DISTINCT chat FROM events", ()) if chat}

    def media(self) -> set[str]:
        return {str(sha) for (sha,) in self._fetch(MEDIA, ())}

    def load_snapshot(self, name: str, version: int) -> tuple[int, bytes] | None:
        rows = self._fetch(SNAPSHOT, (name, version))
        return (int(rows[0][0]), bytes(rows[0][1])) if rows else None

    def size_bytes(self) -> int:
        """The database file plus its write-ahead log."""
        wal = self.path.with_name(self.path.name + "-wal")
        return sum(p.stat().st_size for p in (self.path, wal) if p.is_file())

    def close(self) -> None:
        with self._read_lock:
            self._reader.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SQLiteLog(SQLiteReader):
    """The log on a SQLite file, created if missing; safe to share between threads."""

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
        try:
            # Made 0600 before SQLite opens it: its -wal and -shm then get that mode too.
            private_file(self.path)
            tighten(*(self.path.with_name(self.path.name + s) for s in ("-wal", "-shm")))
        except OSError as exc:
            raise LogError(f"{self.path}: cannot open the event log ({exc.strerror})") from exc
        self._busy_timeout = busy_timeout
        self._synchronous = synchronous
        self._writer = self._connect(busy_timeout, synchronous)
        self._reader = self._connect(busy_timeout, synchronous)
        try:
            with self._writer:
                self._writer.executescript(SCHEMA)
            # From here on writers wait in turn (``_turns``), not in SQLite's busy handler,
            # and leave checkpoints to a thread of their own (``_checkpoint``).
            self._writer.execute("PRAGMA busy_timeout=0")
            self._writer.execute("PRAGMA wal_autocheckpoint=0")
            self._turnstile = Turnstile(self.path)
            self._group = GroupCommit(
                self._commit,
                self._published,
                error=_as_log_error,
                commit_now=self._commit_now if synchronous == "NORMAL" else None,
            )
            self._write_lock = self._group.lock
            self._checkpointer = Checkpointer(self.path, synchronous, self._write_lock)
        except (sqlite3.Error, OSError) as exc:
            self._writer.close()
            self._reader.close()
            raise LogError(f"{self.path}: cannot open the event log ({exc})") from exc
        self._read_lock = threading.Lock()
        self._changed = threading.Condition()
        self._last = super().last_seq()
        self._listeners: list[Callable[[int], None]] = []
        self._closed = False
        self._running = Running()  # the compactions this process runs

    def _connect(self, busy_timeout: float, synchronous: Synchronous) -> sqlite3.Connection:
        try:
            return connect(self.path, synchronous, busy_timeout)
        except sqlite3.Error as exc:
            raise LogError(f"{self.path}: cannot open the event log ({exc})") from exc

    # -- writing ---------------------------------------------------------

    def append(self, *items: AnyEvent | Keyed, guard: Guard | None = None) -> list[Recorded]:
        """Append a burst atomically; returns the events as recorded, in order.

        An item whose key is already in the log is not added again: its slot in
        the result holds the event recorded earlier under that key. ``guard``:
        checked in the transaction, ``Forgotten`` when it refuses.
        """
        return self._group.append(items, encode, guard) if items else []

    def append_now(
        self, *items: AnyEvent | Keyed, guard: Guard | None = None
    ) -> list[Recorded] | None:
        """``append``, for a caller that must not wait (an event loop): None, with
        nothing written, when it would wait for a lock or for a sync (``FULL``)."""
        return self._group.append_now(items, encode, guard) if items else []

    def _commit(self, group: list[Batch]) -> None:
        self._in_transaction(lambda cur: self._insert_all(cur, group))
        self._checkpointer.committed(sum(len(b.rows) for b in group))

    def _commit_now(self, group: list[Batch]) -> bool:
        cur = self._writer.cursor()
        if not begin_now(cur):
            return False
        self._in_transaction(lambda cur: self._insert_all(cur, group), cur)
        self._checkpointer.committed(sum(len(b.rows) for b in group))
        return True

    def _insert_all(self, cur: sqlite3.Cursor, group: list[Batch]) -> None:
        """Each batch; its guard checked exactly only if a cheap query (one for the group,
        from its earliest decision) finds a compaction since or under way."""
        seens = [b.guard.seen for b in group if b.guard is not None]
        suspect = bool(seens) and _compacted_since(cur, min(seens))
        for batch in group:
            if suspect and batch.guard is not None and _forgets(cur, batch.guard):
                batch.refuse()
                continue
            self._insert(cur, batch)

    def _insert(self, cur: sqlite3.Cursor, batch: Batch) -> None:
        ts_us = round(self._clock() * US)
        ts = ts_us / US
        if len(batch.rows) > _SMALL and all(key is None for _, key, _ in batch.rows):
            # Under the write lock AUTOINCREMENT hands out consecutive numbers,
            # so one executemany plus the sequence counter gives every seq.
            base = sequence(cur)
            cur.executemany(
                INSERT, [(ts_us, type_name(e), e.chat, None, body) for e, _, body in batch.rows]
            )
            batch.result = [Recorded(base + i, ts, e) for i, (e, _, _) in enumerate(batch.rows, 1)]
            if sequence(cur) != base + len(batch.rows):
                raise LogError("event log sequence moved during a write; log left unchanged")
            return
        result: list[Recorded] = []
        for event, key, body in batch.rows:
            existing = cur.execute(BY_KEY, (key,)).fetchone() if key is not None else None
            if existing is not None:
                result.append(record(existing))
                continue
            cur.execute(INSERT, (ts_us, type_name(event), event.chat, key, body))
            result.append(Recorded(cur.lastrowid or 0, ts, event, key))
        batch.result = result

    def _in_transaction(
        self, work: Callable[[sqlite3.Cursor], _T], begun: sqlite3.Cursor | None = None
    ) -> _T:
        """``work`` in a transaction, begun here unless ``begun`` holds one."""
        cur = begun
        if cur is None:
            cur = self._writer.cursor()
            begin(cur, self._turnstile, self._busy_timeout)
        try:
            result = work(cur)
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")
        return result

    def _published(self, seq: int) -> None:
        with self._changed:
            self._last = max(self._last, seq)
            self._changed.notify_all()
            last = self._last
        for listener in list(self._listeners):
            listener(last)

    # -- reading ---------------------------------------------------------

    def last_seq(self) -> int:
        """The highest seq committed by anyone, this process or another."""
        seq = super().last_seq()
        with self._changed:
            self._last = max(self._last, seq)
            return self._last

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
        self, reason: CompactReason, selection: Selection, *, progress: Progress | None = None
    ) -> Recorded | None:
        """Delete the selected events in short transactions, then record one ``Compacted``.

        Chunks of about ``TARGET`` seconds on a connection of its own, letting
        waiting appends go first and checkpointing after itself
        (``_compact``). Each chunk's transaction adds what it removed to the
        compaction's row of ``compactions``, and the marker's turns that row
        into the event: a failure between (a full disk, kill -9) leaves the row,
        and the next compaction or start finishes it (``finish_compactions``,
        run first). Once the marker is recorded, the snapshots folded before it
        go (they may hold what went) and the WAL is emptied, so no file keeps
        a byte of what was removed.
        """
        finished = self._finish_left()
        pending = Pending.start(reason, selection, self.last_seq())
        pending_id = self._announce(pending) if announces(reason, selection) else None
        own = self._compact(pending, pending_id, progress)
        return answer(own, finished, reason, selection)

    def _announce(self, pending: Pending) -> int:
        """Add the compaction's row before anything goes, its ``top`` read in the same
        transaction (``announces``); drops the snapshots, as a first chunk would."""

        def add(cur: sqlite3.Cursor) -> int:
            pending.top = sequence(cur)
            row_id = cur.execute(PENDING_ADD, (pending.encode(),)).lastrowid
            cur.execute(DROP_SNAPSHOTS)
            return int(row_id or 0)

        with self._write_lock:
            try:
                return self._in_transaction(add)
            except sqlite3.Error as exc:
                raise _as_log_error(exc) from exc

    def finish_compactions(self) -> list[Recorded]:
        """Finish each compaction left in ``compactions`` by a failure; their markers."""
        return [recorded for _, recorded in self._finish_left()]

    def _finish_left(self) -> list[tuple[Pending, Recorded]]:
        rows = [(int(row_id), str(state)) for row_id, state in self._fetch(PENDING, ())]
        return finish_left(rows, self._running, self._compact)

    def _compact(
        self, pending: Pending, pending_id: int | None, progress: Progress | None
    ) -> Recorded | None:
        """Run ``pending`` (from its ``upto``) to its marker; the marker, None if none."""
        recorded: list[Recorded] = []
        ran: list[int] = []

        def started(row_id: int) -> None:
            self._running.add(row_id)
            ran.append(row_id)

        def finish(row_id: int | None) -> bool:
            if row_id is None:
                return False  # nothing went
            with self._write_lock:
                ts_us = round(self._clock() * US)
                marker = self._in_transaction(
                    lambda cur: _record_marker(cur, row_id, pending, ts_us)
                )
            if marker is None:
                return False
            recorded.append(marker)
            self._checkpointer.committed(1)
            self._published(marker.seq)
            return True

        if pending_id is not None:
            started(pending_id)
        try:
            compact_rows(
                self.path,
                pending,
                pending_id,
                Tally(progress),
                busy_timeout=self._busy_timeout,
                synchronous=self._synchronous,
                write_lock=self._write_lock,
                waiting=lambda: self._group.waiting,
                started=started,
                finish=finish,
            )
        except sqlite3.Error as exc:
            raise _as_log_error(exc) from exc
        finally:
            self._running.discard(ran)
        return recorded[0] if recorded else None

    def save_snapshot(self, name: str, version: int, seq: int, state: bytes) -> None:
        """Store a projection cache; snapshots are not facts and may be dropped.

        Not stored when a compaction was recorded after ``seq``: the state may
        hold what it removed (a forgotten chat's texts). The next start then
        begins from the snapshot before it, or folds from the start.
        """
        with self._write_lock:
            try:
                self._in_transaction(
                    lambda cur: cur.execute(SAVE_SNAPSHOT, (name, version, seq, state, seq))
                )
            except sqlite3.Error as exc:  # a full disk: megabytes that did not fit
                raise _as_log_error(exc) from exc
            self._checkpointer.soon()  # a snapshot is megabytes: copy it back soon

    def purge(self) -> None:
        """Drop every snapshot, rewrite the file without free space (``VACUUM``) and
        empty the WAL, so nothing compaction removed stays readable in any file.

        Beside a running bot: the delete waits its turn as any write does, and the
        ``VACUUM`` in SQLite's busy handler (the writer's is off: writers take turns),
        where a bot's append in progress made it fail at once ("database is locked")
        with the chat's events gone but the file not yet rewritten.
        """
        with self._write_lock:
            try:
                self._in_transaction(lambda cur: cur.execute("DELETE FROM snapshots"))
                with busy_timeout(self._writer, self._busy_timeout, then=0):
                    self._writer.execute("VACUUM")
                emptied = empty_wal(self._writer, _PURGE_WAIT)
            except sqlite3.Error as exc:
                raise _as_log_error(exc) from exc
        if not emptied:
            raise LogError(f"{self.path}-wal: still read by another process; try again")

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        with self._write_lock, self._read_lock:
            self._writer.close()
            self._reader.close()
            self._turnstile.close()
        self._checkpointer.close()


def open_store(
    store: Path, *, synchronous: Synchronous = "NORMAL", clock: Callable[[], float] = time.time
) -> SQLiteLog:
    """``STORE/events.db`` for writing, its store created (owner-only) if missing.

    Here rather than in ``events.backends`` because a copy into a store
    (``events.transfer``) creates it too, and ``events.transfer`` cannot import
    ``events.backends``: the PostgreSQL side of a copy imports ``events.transfer``.
    """
    store = Path(store)
    try:
        private_dir(store)
    except OSError as exc:
        raise LogError(f"{store}: cannot create the store directory ({exc.strerror})") from exc
    return SQLiteLog(store / DB_NAME, synchronous=synchronous, clock=clock)


def _record_marker(
    cur: sqlite3.Cursor, row_id: int, pending: Pending, ts_us: int
) -> Recorded | None:
    """In one transaction: compaction ``row_id``'s marker recorded, its row removed, the
    snapshots folded before dropped. Finished by another process already: its marker."""
    row = cur.execute(PENDING_ONE, (row_id,)).fetchone()
    if row is None:
        found = cur.execute(BY_KEY, (pending.key,)).fetchone()
        return None if found is None else record(found)
    stored = Pending.decode(row[0])
    cur.execute(PENDING_DONE, (row_id,))
    marker = stored.marker()
    if marker is None:
        return None
    cur.execute(INSERT, (ts_us, type_name(marker), marker.chat, stored.key, encode(marker)))
    seq = int(cur.lastrowid or 0)
    cur.execute(DROP_SNAPSHOTS_BEFORE, (seq,))
    return Recorded(seq, ts_us / US, marker, stored.key)


def _compacted_since(cur: sqlite3.Cursor, seen: int) -> bool:
    """Whether a marker came after ``seen`` or a compaction is under way (the write lock held)."""
    row = cur.execute(COMPACTED_SINCE, (seen,)).fetchone()
    return bool(row and row[0])


def _forgets(cur: sqlite3.Cursor, guard: Guard) -> bool:
    """Whether ``guard`` refuses, read in the append's transaction (the write lock held)."""
    markers = [record(row).event for row in cur.execute(MARKERS_AFTER, (guard.seen,))]
    under_way = [Pending.decode(state) for _, state in cur.execute(PENDING)]
    return forgets(guard, [m for m in markers if isinstance(m, Compacted)], under_way)


def _as_log_error(exc: BaseException) -> BaseException:
    if isinstance(exc, sqlite3.Error):
        return LogError(f"event log write failed: {exc}")
    return exc
