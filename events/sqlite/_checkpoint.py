"""The SQLite log's checkpoints, on a thread of their own: no append copies the WAL back.

In WAL mode SQLite copies the write-ahead log back into the database (a
checkpoint) in whichever commit finds the WAL over 1000 pages: that append
pays for writing megabytes and two fsyncs. Worse, beside a compaction, an
append of the bot would pay for the compaction's pages. So the log's writer
connection never checkpoints in a commit; after about ``PAGES`` pages written
(eight times that with ``synchronous=NORMAL``) this thread runs ``PASSIVE``
checkpoints (they never block a writer) on a connection of its own, while
appends carry on.

Copying is not enough to keep the WAL small. SQLite starts writing the WAL
over from its top only when a write begins with every frame copied back, and
the appends that go on during a checkpoint always leave a few behind: the WAL
would grow for as long as the bot runs (100 MB after 5,000 single commits),
and a commit that grows the file costs more to sync than one that overwrites
it (``synchronous=FULL`` commits ran at 0.6x raw sqlite3). So after a pass
that was quick and copied all it found, one more pass copies the few frames
appended meanwhile while this process's appends wait (the log's write lock;
a few frames and two syncs, a few milliseconds), and the next append starts
the WAL over. After a slow pass the appends it let in could be many: another pass
chases them instead. A reader of an old snapshot may still leave frames
behind: the WAL then starts over after a later checkpoint.

A WAL larger than ``LIMIT`` is another writer's bulk in progress (a
compaction, which checkpoints its own pages): copying it from here would
compete with that writer for the disk (its chunks, which appends wait for,
took twice as long), so a checkpoint this process's appends ask for waits,
``_YIELDS`` times at most. The compaction cuts such a WAL back once, at its
end (``_compact``): cutting it back costs about 60 ms per 300 MB with the write
lock held, which appends would wait for at every restart if it were done each
time (``journal_size_limit``).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from pathlib import Path

from events.sqlite._schema import connect

__all__ = ["LIMIT", "Checkpointer", "empty_wal", "grown_by_bulk"]

PAGES = 1000  # pages written between two checkpoints: SQLite's own default
# With synchronous=NORMAL a commit does not sync: a WAL that grows costs it little,
# so the WAL starts over less often (about 32 MB) and appends wait for the locked
# pass eight times less (appending flat out, at 1000 pages they waited a tenth of
# their time).
_NORMAL_PAGES = 8 * PAGES
_PAGES_PER_COMMIT = 4  # a commit rewrites the last page of the table, of each index, the sequence
_EVENTS_PER_PAGE = 10  # events of about 300 bytes, with their index entries
_QUICK = 0.01  # seconds: after a pass this short, the next one (locked) has little to copy
_PASSES = 4  # unlocked passes that may chase the appends before this checkpoint gives up
_YIELDS = 15  # checkpoints in a row left to another writer's bulk before one runs anyway
LIMIT = 128 * 1024 * 1024  # bytes: a WAL larger than this was grown by a bulk
_EMPTY_POLL = 0.05  # seconds between two tries to empty the WAL


def grown_by_bulk(db: Path) -> bool:
    """Whether the WAL file of the database at ``db`` is over ``LIMIT``: a bulk's."""
    try:
        return db.with_name(db.name + "-wal").stat().st_size > LIMIT
    except OSError:
        return False


def empty_wal(conn: sqlite3.Connection, patience: float) -> bool:
    """``wal_checkpoint(TRUNCATE)`` on ``conn``: everything copied back and the WAL file
    cut to nothing, so no frame of a deleted row stays readable in it. Tried again
    while another checkpoint (this log's ``Checkpointer``, another process's) or a
    reader of old frames holds it up, for ``patience`` seconds; whether it was emptied.

    Each try waits in ``conn``'s busy handler, with writers held off, at most for
    its ``busy_timeout``; between tries appends go on.
    """
    deadline = time.monotonic() + patience
    while True:
        busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        if not busy:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(_EMPTY_POLL)


class Checkpointer:
    """Checkpoints of the database at ``path``, asked for by ``committed`` and ``soon``.

    ``write_lock`` is the log's in-process writer lock: held, no append of this
    process writes.
    """

    def __init__(self, path: Path, synchronous: str, write_lock: threading.Lock) -> None:
        self._path = path
        self._conn = connect(path, synchronous)
        self._write_lock = write_lock
        self._due = threading.Event()
        self._closing = False
        self._pages = 0.0  # written since the last checkpoint was asked for
        self._every = PAGES if synchronous == "FULL" else _NORMAL_PAGES
        self._now = False  # ``soon`` asked: whatever the WAL's size
        self._yielded = 0
        self._thread = threading.Thread(target=self._run, name="wabot-checkpoint", daemon=True)
        self._thread.start()

    def committed(self, events: int) -> None:
        """One transaction of ``events`` was committed (called under the write lock)."""
        self._pages += _PAGES_PER_COMMIT + events / _EVENTS_PER_PAGE
        if self._pages >= self._every:
            self._pages = 0.0
            self._due.set()

    def soon(self) -> None:
        """Checkpoint now, whatever the WAL's size: much was written (a snapshot)."""
        self._now = True
        self._due.set()

    def _run(self) -> None:
        while True:
            self._due.wait()
            if self._closing:
                return
            self._due.clear()
            now, self._now = self._now, False
            if not now and self._bulk_elsewhere():
                continue
            # An optimisation: if one fails the WAL stays correct and the next catches up.
            with contextlib.suppress(sqlite3.Error):
                self._checkpoint()

    def _bulk_elsewhere(self) -> bool:
        """Whether to leave this checkpoint to the writer that grew the WAL past ``LIMIT``."""
        big = grown_by_bulk(self._path)
        self._yielded = self._yielded + 1 if big and self._yielded < _YIELDS else 0
        return bool(self._yielded)

    def _checkpoint(self) -> None:
        """Copy the WAL back while appends go on, then the last few frames with them held off.

        The locked pass only follows a quick pass that copied every frame it
        found (no reader held it back): so it has only the few frames appended
        meanwhile to copy, whoever appended them.
        """
        for _ in range(_PASSES):
            started = time.monotonic()
            copied_all = self._pass()
            if copied_all and time.monotonic() - started <= _QUICK:
                with self._write_lock:
                    self._pass()
                return

    def _pass(self) -> bool:
        """One ``PASSIVE`` checkpoint; whether it copied every frame the WAL held when it began."""
        busy, frames, copied = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return not busy and frames == copied

    def close(self) -> None:
        """Idempotent; the last connection to close checkpoints what is left."""
        if self._closing:
            return
        self._closing = True
        self._due.set()
        self._thread.join()
        self._conn.close()
