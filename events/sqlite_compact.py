"""Compaction of the SQLite log: short chunks on a connection of its own, cleaning its WAL.

The rows to delete are found by a read outside the write lock, which is then
held only to delete them: a range of seqs (the selection checked again, as
seqs are never reused), sized by ``Pacer`` to about ``TARGET`` seconds.
Before each chunk, writers waiting in this process or another go first
(``sqlite_turn``), so none waits for more than about one chunk.

Every chunk leaves its pages in the write-ahead log. The log's writers never
checkpoint in a commit (``sqlite_checkpoint``), so no append pays for them;
the compaction checkpoints itself every ``_CHECKPOINT_ROWS`` rows, outside
the lock, while appends carry on. Checkpointing after every chunk would copy
the index pages that consecutive chunks share again and again.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from events.compaction import Pacer, Tally
from events.protocol import Selection
from events.sqlite_schema import where
from events.sqlite_turn import Turnstile, begin

__all__ = ["compact_rows"]

_CACHE_KIB = 32 * 1024  # the chunks revisit index pages: keep them for this compaction
_CHECKPOINT_ROWS = 100_000  # rows deleted between two checkpoints: a WAL of at most ~200 MB
_YIELD_FOR = 0.1  # at most this long a chunk waits for this process's queued appends
_YIELD_POLL = 0.0005


def compact_rows(
    path: Path,
    selection: Selection,
    tally: Tally,
    *,
    top: int,
    busy_timeout: float,
    synchronous: str,
    write_lock: threading.Lock,
    waiting: Callable[[], bool],
) -> None:
    """Delete the events of ``selection`` up to seq ``top`` from the log at ``path``.

    ``write_lock`` is the log's in-process writer lock and ``waiting`` says
    whether appends of this process are queued for it.
    """
    condition, args = where(selection)
    pick = f"SELECT seq FROM events WHERE seq > ? AND seq <= ? AND {condition} ORDER BY seq LIMIT ?"
    delete = f"DELETE FROM events WHERE seq > ? AND seq <= ? AND {condition} RETURNING seq, type"
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    turn = Turnstile(path)
    try:
        for pragma in (f"synchronous={synchronous}", "wal_autocheckpoint=0"):
            conn.execute(f"PRAGMA {pragma}")
        conn.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
        pacer = Pacer()
        after = unchecked = 0
        while seqs := [s for (s,) in conn.execute(pick, (after, top, *args, pacer.size))]:
            _let_in(turn, waiting)
            with write_lock:
                conn.execute("PRAGMA busy_timeout=0")  # wait in turn, not in SQLite's handler
                begin(conn.cursor(), turn, busy_timeout)
                started = time.perf_counter()
                try:
                    rows = conn.execute(delete, (after, seqs[-1], *args)).fetchall()
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                held = time.perf_counter() - started
                conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            unchecked += len(rows)
            if unchecked >= _CHECKPOINT_ROWS:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                unchecked = 0
            after = seqs[-1]
            tally.add([(int(seq), str(kind)) for seq, kind in rows], held)
            pacer.took(len(seqs), held)
    finally:
        conn.close()
        turn.close()


def _let_in(turn: Turnstile, waiting: Callable[[], bool]) -> None:
    """Appends queued in this process, then those waiting in others, go before a chunk."""
    deadline = time.monotonic() + _YIELD_FOR
    while waiting() and time.monotonic() < deadline:
        time.sleep(_YIELD_POLL)
    turn.let_in()
