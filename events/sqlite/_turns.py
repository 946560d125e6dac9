"""Writers of one SQLite file take turns, so a long stream of short transactions starves no one.

SQLite's own busy handler sleeps with growing pauses (up to 100 ms) between
tries, and is not a queue: a compaction that takes the write lock again right
after each chunk finds it free every time, while an append in another process
sleeping in the handler keeps missing the moment. So here a writer that found
the lock taken says so: it holds a shared ``flock`` on ``events.db-turn``
while it tries again every millisecond or so, and a compaction takes that file
exclusively (which waits for every such writer to get in) before each chunk.
The uncontended append never touches the file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from events.owner_only import open_private

__all__ = ["Turnstile", "begin", "begin_now"]

SUFFIX = "-turn"
_POLL = (0.0005, 0.001, 0.002)  # pauses between tries of a waiting writer, then the last


class Turnstile:
    """The turn file of the database at ``db``, opened by this process (its own description)."""

    def __init__(self, db: Path) -> None:
        self.path = db.with_name(db.name + SUFFIX)
        self._fd = open_private(self.path, os.O_RDWR)

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        """Held while a writer waits for the write lock: a compaction lets it in first."""
        fcntl.flock(self._fd, fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def let_in(self) -> None:
        """Wait until every writer now waiting, in any process, has had its turn."""
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Idempotent, as the log's ``close`` is."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


def begin(cur: sqlite3.Cursor, turnstile: Turnstile, timeout: float) -> None:
    """``BEGIN IMMEDIATE`` on a connection without busy handler, waiting in turn if taken.

    Raises ``SQLITE_BUSY`` ("database is locked") after ``timeout`` seconds.
    """
    if _began(cur, last=False):
        return
    deadline = time.monotonic() + timeout
    with turnstile.waiting():
        tries = 0
        while not _began(cur, last=time.monotonic() >= deadline):
            time.sleep(_POLL[min(tries, len(_POLL) - 1)])
            tries += 1


def begin_now(cur: sqlite3.Cursor) -> bool:
    """``BEGIN IMMEDIATE`` if the write lock is free; False (nothing begun) if taken."""
    return _began(cur, last=False)


def _began(cur: sqlite3.Cursor, *, last: bool) -> bool:
    """True if the write lock was taken; False if busy (raised when ``last``)."""
    try:
        cur.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if last or getattr(exc, "sqlite_errorcode", 0) & 0xFF != sqlite3.SQLITE_BUSY:
            raise
        return False
    return True
