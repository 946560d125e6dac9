"""One daemon per log: two would both answer every message.

``daemon_lock`` hands the command line "a lock" for the log it runs on, and
the daemon never learns which:

- a log in the store (SQLite): ``DaemonLock`` (``pipeline.store_lock``, as the
  tools that must not run beside a daemon take it too), an advisory ``flock`` on
  ``STORE/daemon.lock``, held for the life of the process; the kernel releases
  it however the process ends, so a crash or ``kill -9`` never leaves a stale
  lock behind, and a second daemon stops at once with one line;
- a log on PostgreSQL: ``LeaseLock`` (``_lease``), a lease in the database
  keyed by the number, for which a second daemon waits as a standby.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from events.backends import is_postgres
from pipeline.store_lock import AlreadyRunning, DaemonLock

__all__ = ["AlreadyRunning", "DaemonLock", "Lock", "daemon_lock"]


class Lock(Protocol):
    """Held from ``acquire`` (which may wait) to ``release``; one holder per log."""

    def acquire(self) -> None: ...

    def release(self, *, clean: bool = False) -> None:
        """``clean``: the daemon stopped as it should (its transport closed)."""


def daemon_lock(store: Path, url: str | None, number: str) -> Lock:
    """The lock for the log of ``number``: in the database when ``url`` names one."""
    if is_postgres(url):
        from pipeline.daemon._lease import LeaseLock  # noqa: PLC0415  (loads psycopg)

        return LeaseLock(url, number)
    return DaemonLock(store)
