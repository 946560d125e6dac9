"""Compaction of the SQLite log: short chunks on a connection of its own, cleaning its WAL.

The rows to delete are found by a read outside the write lock, which is then
held only to delete them: a range of seqs (the selection checked again, as
seqs are never reused), sized by ``Pacer`` to about ``TARGET`` seconds.
Before each chunk, writers waiting in this process or another go first
(``_turns``), so none waits for more than about one chunk.

Every chunk leaves its pages in the write-ahead log. The log's writers never
checkpoint in a commit (``_checkpoint``), so no append pays for them;
the compaction checkpoints itself every ``_CHECKPOINT_ROWS`` rows, outside
the lock, while appends carry on, and starts the WAL over (``checkpoint``).
Checkpointing after every chunk would copy the index pages that consecutive
chunks share again and again.

Each chunk's transaction also records what it removed in the compaction's
row of ``compactions`` (``events.compaction.Pending``; the first one adds
that row and drops the snapshots, which may hold what goes), so a failure
before the marker loses nothing the marker must say: whoever finishes it
later goes on from there.

Once the marker is recorded and the snapshots folded before it are dropped
(the log's ``finish``), the compaction copies everything back and cuts the WAL
to nothing (``empty``): its older frames still held the removed rows and the
dropped snapshots as they were written, readable there until overwritten.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from events.compaction import Pacer, Pending, Tally
from events.sqlite import _checkpoint
from events.sqlite._schema import (
    DROP_SNAPSHOTS,
    PENDING_ADD,
    PENDING_ONE,
    PENDING_SET,
    busy_timeout,
    connect,
    where,
)
from events.sqlite._turns import Turnstile, begin

__all__ = ["compact_rows"]

_Rows = list[tuple[int, str, str]]  # (seq, type, chat) of events
_CACHE_KIB = 32 * 1024  # the chunks revisit index pages: keep them for this compaction
_CHECKPOINT_ROWS = 100_000  # rows deleted between two checkpoints: a WAL of at most ~200 MB
_RESTART_WAIT = 0.02  # seconds the WAL's restart waits for a writer or an old reader, at most
_EMPTY_WAIT = 10.0  # seconds the WAL's emptying is tried again for, at most
_YIELD_FOR = 0.1  # at most this long a chunk waits for this process's queued appends
_YIELD_POLL = 0.0005


def compact_rows(
    path: Path,
    pending: Pending,
    pending_id: int | None,
    tally: Tally,
    *,
    busy_timeout: float,
    synchronous: str,
    write_lock: threading.Lock,
    waiting: Callable[[], bool],
    started: Callable[[int], None],
    finish: Callable[[int | None], bool],
) -> None:
    """Delete the events of ``pending`` from its ``upto`` to its ``top`` in the log at ``path``.

    ``pending_id`` is its row in ``compactions`` (None: a compaction not yet
    recorded there; ``started`` hears of the row its first chunk adds, before
    that commits). ``write_lock`` is the log's in-process writer lock and
    ``waiting`` says whether appends of this process are queued for it.
    ``finish`` runs once the rows are gone, with the row's id (None: nothing
    went): the log records the marker and drops the snapshots folded before
    it, and says whether anything went; then the WAL is emptied.
    """
    chunks = _Chunks(
        path,
        pending,
        pending_id,
        started=started,
        busy_timeout=busy_timeout,
        synchronous=synchronous,
    )
    try:
        pacer = Pacer()
        after, top = pending.upto, pending.top
        unchecked = 0
        size = pacer.size
        while picked := chunks.pick(after, top, size):
            _let_in(chunks.turn, waiting)
            with write_lock:
                rows, held = chunks.delete(after, picked)
            if rows is None:
                break  # another process finished this compaction meanwhile
            unchecked += len(rows)
            if unchecked >= _CHECKPOINT_ROWS:
                chunks.checkpoint()
                unchecked = 0
            after = picked[-1][0]
            tally.add(rows, held)
            if len(picked) < size:
                break  # that read went to ``top``: a last one would find nothing
            pacer.took(len(picked), held)
            size = pacer.size
        if finish(chunks.pending_id) or _checkpoint.grown_by_bulk(path):
            # What went, and the snapshots dropped, must not stay readable in the WAL's
            # frames. And the log's own checkpoints leave a WAL over LIMIT to the bulk
            # that grew it: a file left that size would hold them off for as long as the
            # bot runs. The marker is recorded by now: a failure here must not cost it
            # (the next compaction empties the WAL).
            with contextlib.suppress(sqlite3.Error):
                chunks.empty()
    finally:
        chunks.close()


class _Chunks:
    """The compaction's connection (its own cache, no checkpoint in a commit) and statements."""

    def __init__(
        self,
        path: Path,
        pending: Pending,
        pending_id: int | None,
        *,
        started: Callable[[int], None],
        busy_timeout: float,
        synchronous: str,
    ) -> None:
        self._pending = pending
        self.pending_id = pending_id
        self._started = started
        condition, self._args = where(pending.selection)
        span = f"FROM events WHERE seq > ? AND seq <= ? AND {condition}"
        self._pick = f"SELECT seq, type, chat {span} ORDER BY seq LIMIT ?"
        self._delete = f"DELETE {span}"
        self._returning = f"{self._delete} RETURNING seq, type, chat"
        self._busy_timeout = busy_timeout
        self._path = path
        self._conn = connect(path, synchronous, busy_timeout)
        self.turn = Turnstile(path)
        for pragma in ("wal_autocheckpoint=0", f"cache_size=-{_CACHE_KIB}"):
            self._conn.execute(f"PRAGMA {pragma}")

    def pick(self, after: int, top: int, size: int) -> _Rows:
        """The next ``size`` selected events after ``after``: read outside the write lock."""
        # seq, type and chat come back as int, str, str: the rows as they are.
        found: _Rows = self._conn.execute(self._pick, (after, top, *self._args, size)).fetchall()
        return found

    def delete(self, after: int, picked: _Rows) -> tuple[_Rows | None, float]:
        """Delete the selected events up to the last picked; returns them and the time held.

        Rows only ever leave a range below the log's end, so the range holds
        what was picked unless another compaction took some meanwhile: then
        this chunk is done again, saying exactly which went. What went is added
        to the compaction's row in the same transaction; None, with nothing
        deleted, when another process finished the compaction meanwhile.
        """
        upto = picked[-1][0]
        span = (after, upto, *self._args)
        with self._busy_timeout_of(0):  # wait in turn, not in SQLite's handler
            begin(self._conn.cursor(), self.turn, self._busy_timeout)
            started = time.perf_counter()
            try:
                gone = self._conn.execute(self._delete, span).rowcount
                if gone != len(picked):
                    self._conn.execute("ROLLBACK")
                    begin(self._conn.cursor(), self.turn, self._busy_timeout)
                    gone_now = self._conn.execute(self._returning, span)
                    picked = [(int(seq), str(kind), str(chat)) for seq, kind, chat in gone_now]
                if picked and not self._note(picked, upto):
                    self._conn.execute("ROLLBACK")
                    return None, time.perf_counter() - started
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            return picked, time.perf_counter() - started

    def _note(self, rows: _Rows, upto: int) -> bool:
        """Add ``rows`` to the compaction's row, in the chunk's transaction; False if
        the row is gone (another process recorded the marker)."""
        if self.pending_id is None:
            self._pending.add(rows, upto)
            added = self._conn.execute(PENDING_ADD, (self._pending.encode(),)).lastrowid
            assert added is not None
            self.pending_id = added
            self._started(added)
            # Folded before, they may hold what goes; none is stored until the marker is.
            self._conn.execute(DROP_SNAPSHOTS)
            return True
        row = self._conn.execute(PENDING_ONE, (self.pending_id,)).fetchone()
        if row is None:
            return False
        # Read back, not kept here: another process may be finishing it too.
        stored = Pending.decode(row[0])
        stored.add(rows, upto)
        self._conn.execute(PENDING_SET, (stored.encode(), self.pending_id))
        return True

    def checkpoint(self) -> None:
        """Copy the chunks' pages back, then start the WAL over from its top.

        A WAL starts over only when a write begins with every frame copied
        back, and appends (here or in another process) go on during the
        ``PASSIVE`` pass: beside a daemon appending every few milliseconds
        that never happened, and the WAL grew by every page the compaction
        touched (1.7 GB for a million events, against 165 MB alone, and the
        chunks slowed with it). So the ``RESTART`` pass copies the few frames
        appended meanwhile with writers held off, and waits at most
        ``_RESTART_WAIT`` for a reader of an older snapshot (if one stays, the
        next checkpoint tries again). Writers wait for its syncs: the database
        file is synced before it, while appends go on, so that its own sync has
        only those few pages to write (the passive pass skips its sync when
        appends came in meanwhile, and the restart then took up to 180 ms).
        """
        self._copy_back()
        with self._busy_timeout_of(_RESTART_WAIT):
            self._conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()

    def empty(self) -> bool:
        """``checkpoint``, cutting the WAL file back to nothing (``TRUNCATE``): no frame
        of a removed row or a dropped snapshot stays in it. Whether it was emptied.

        As ``checkpoint`` the passes before copy while appends go on, and each try
        holds writers off for its few frames, waiting ``_RESTART_WAIT`` at most for
        a reader of an older snapshot. Another checkpoint running (the log's own
        thread, another process's) or such a reader that stays: tried again, with
        appends going on in between, for up to ``_EMPTY_WAIT``. Cutting the file
        back costs about 60 ms per 300 MB (at most once, after a compaction).
        """
        self._copy_back()
        with self._busy_timeout_of(_RESTART_WAIT):
            return _checkpoint.empty_wal(self._conn, _EMPTY_WAIT)

    def _copy_back(self) -> None:
        """What the WAL holds copied into the database file and synced, while appends
        go on: the pass that holds writers off then has only the newest frames left."""
        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        _sync(self._path)

    def _busy_timeout_of(self, seconds: float) -> contextlib.AbstractContextManager[None]:
        """SQLite's busy handler waits ``seconds`` at most inside, then as configured."""
        return busy_timeout(self._conn, seconds, self._busy_timeout)

    def close(self) -> None:
        self._conn.close()
        self.turn.close()


_datasync = getattr(os, "fdatasync", os.fsync)  # macOS has no fdatasync


def _sync(path: Path) -> None:
    """The database file's pages on disk (any descriptor of the file syncs them all).

    Only a head start: should it fail, the checkpoint's own sync does the work
    (and SQLite reports a disk that cannot sync, as a ``LogError``).
    """
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            _datasync(fd)
        finally:
            os.close(fd)


def _let_in(turn: Turnstile, waiting: Callable[[], bool]) -> None:
    """Appends queued in this process, then those waiting in others, go before a chunk."""
    deadline = time.monotonic() + _YIELD_FOR
    while waiting() and time.monotonic() < deadline:
        time.sleep(_YIELD_POLL)
    turn.let_in()
