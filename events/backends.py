"""Which backend holds a store's log, and opening it for writing or for reading only."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from events.private import private_dir
from events.protocol import LogError, LogReader, LogWriter
from events.sqlite import DB_NAME, SQLiteLog, SQLiteReader, Synchronous

__all__ = ["DB_NAME", "open_log", "open_reader"]


def open_log(
    store: Path,
    *,
    synchronous: Synchronous = "NORMAL",
    clock: Callable[[], float] | None = None,
) -> LogWriter:
    """Open (creating if needed) ``STORE/events.db`` for reading and writing."""
    store = Path(store)
    try:
        private_dir(store)
    except OSError as exc:
        raise LogError(f"{store}: cannot create the store directory ({exc.strerror})") from exc
    if clock is None:
        return SQLiteLog(store / DB_NAME, synchronous=synchronous)
    return SQLiteLog(store / DB_NAME, synchronous=synchronous, clock=clock)


def open_reader(store: Path) -> LogReader:
    """``STORE/events.db`` read-only; ``NoLog`` when there is none."""
    return SQLiteReader(Path(store) / DB_NAME)
