"""Which backend holds a store's log, and opening it for writing or for reading only.

Without a URL the log is ``STORE/events.db`` (SQLite). A ``postgresql://`` or
``postgres://`` URL (``store.url``, ``--log-url``, ``WABOT_LOG_URL``) puts it
in that database instead, as the log called ``name`` (the owner's number):
one database serves many numbers. ``STORE`` stays the local directory either way.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeGuard

from events.protocol import LogError, LogReader, LogWriter
from events.sqlite import DB_NAME, SQLiteReader, Synchronous, open_store

__all__ = ["DB_NAME", "PATIENT", "is_postgres", "log_names", "open_log", "open_reader"]

_SCHEMES = ("postgresql://", "postgres://")
PATIENT = 30.0  # seconds a PostgreSQL append waits for the database to come back, by default


def is_postgres(url: str | None) -> TypeGuard[str]:
    """Whether ``url`` names a PostgreSQL log (anything else means SQLite in the store)."""
    return url is not None and url.startswith(_SCHEMES)


def open_log(
    store: Path,
    *,
    url: str | None = None,
    name: str | None = None,
    synchronous: Synchronous = "NORMAL",
    clock: Callable[[], float] | None = None,
    retry_for: float | None = PATIENT,
) -> LogWriter:
    """Open (creating if needed) the log for reading and writing: ``url``'s, else the store's.

    ``retry_for``: how long a PostgreSQL append waits out a database that went
    away (None: until the log is closed); a local file has nothing to wait for.
    """
    if is_postgres(url):
        # psycopg costs ~140 ms and ~19 MB: loaded only by a process that uses it.
        from events.postgres import PostgresLog  # noqa: PLC0415

        named = _named(url, name)
        if clock is None:
            return PostgresLog(url, name=named, synchronous=synchronous, retry_for=retry_for)
        return PostgresLog(
            url, name=named, synchronous=synchronous, retry_for=retry_for, clock=clock
        )
    if clock is None:
        return open_store(store, synchronous=synchronous)
    return open_store(store, synchronous=synchronous, clock=clock)


def open_reader(store: Path, *, url: str | None = None, name: str | None = None) -> LogReader:
    """The log read-only (``url``'s, else ``STORE/events.db``); ``NoLog`` when there is none."""
    if is_postgres(url):
        from events.postgres import PostgresReader  # noqa: PLC0415

        return PostgresReader(url, name=_named(url, name))
    return SQLiteReader(Path(store) / DB_NAME)


def _named(url: str, name: str | None) -> str:
    """A PostgreSQL database holds many logs: one must be chosen, never guessed."""
    if not name:
        from events.postgres import label  # noqa: PLC0415

        raise LogError(f"{label(url)}: a PostgreSQL log needs a name (the owner's phone number)")
    return name


def log_names(url: str) -> list[str]:
    """The logs a PostgreSQL database holds (one per owner's number), sorted."""
    from events.postgres import connect, target  # noqa: PLC0415
    from events.postgres import log_names as names  # noqa: PLC0415

    where = target(url)
    with connect(where, read_only=True) as conn:
        return names(conn, where)
