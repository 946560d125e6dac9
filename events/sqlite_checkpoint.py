"""The SQLite log's checkpoints, on a thread of their own: no append waits for one.

In WAL mode SQLite copies the write-ahead log back into the database (a
checkpoint) in whichever commit finds the WAL over 1000 pages: that append
pays for writing megabytes and two fsyncs. Worse, beside a compaction, an
append of the bot would pay for the compaction's pages. So the log's writer
connection never checkpoints in a commit; after every ``EVERY`` events
written this thread runs a ``PASSIVE`` checkpoint (it never blocks a writer)
on a connection of its own, while appends carry on.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path

__all__ = ["EVERY", "Checkpointer"]

EVERY = 2000  # events written between two checkpoints: about SQLite's 1000 pages


class Checkpointer:
    """Checkpoints of the database at ``path``, asked for by ``wrote``."""

    def __init__(self, path: Path, synchronous: str) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute(f"PRAGMA synchronous={synchronous}")
        self._due = threading.Event()
        self._closing = False
        self._written = 0
        self._thread = threading.Thread(target=self._run, name="wabot-checkpoint", daemon=True)
        self._thread.start()

    def wrote(self, events: int) -> None:
        """``events`` were committed (called under the log's write lock)."""
        self._written += events
        if self._written >= EVERY:
            self._written = 0
            self._due.set()

    def _run(self) -> None:
        while True:
            self._due.wait()
            if self._closing:
                return
            self._due.clear()
            # An optimisation: if one fails the WAL stays correct and the next catches up.
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def close(self) -> None:
        """Idempotent; the last connection to close checkpoints what is left."""
        if self._closing:
            return
        self._closing = True
        self._due.set()
        self._thread.join()
        self._conn.close()
