"""One daemon per log: two would both answer every message.

``daemon_lock`` hands the command line "a lock" for the log it runs on, and
the daemon never learns which:

- a log in the store (SQLite): ``DaemonLock``, an advisory ``flock`` on
  ``STORE/daemon.lock``, held for the life of the process; the kernel releases
  it however the process ends, so a crash or ``kill -9`` never leaves a stale
  lock behind, and a second daemon stops at once with one line;
- a log on PostgreSQL: ``LeaseLock`` (``_lease``), a lease in the database
  keyed by the number, for which a second daemon waits as a standby.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Protocol

from events.backends import is_postgres
from events.owner_only import open_private, private_dir
from pipeline.paths import LOCK_NAME


class Lock(Protocol):
    """Held from ``acquire`` (which may wait) to ``release``; one holder per log."""

    def acquire(self) -> None: ...

    def release(self) -> None: ...


def daemon_lock(store: Path, url: str | None, number: str) -> Lock:
    """The lock for the log of ``number``: in the database when ``url`` names one."""
    if is_postgres(url):
        from pipeline.daemon._lease import LeaseLock  # noqa: PLC0415  (loads psycopg)

        return LeaseLock(url, number)
    return DaemonLock(store)


class AlreadyRunning(Exception):
    """The store is held by another daemon, or cannot be used at all (exit 2, one line)."""


class DaemonLock:
    def __init__(self, store: Path) -> None:
        self.path = Path(store) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            private_dir(self.path.parent)
            fd = open_private(self.path, os.O_RDWR)
        except OSError as exc:
            raise AlreadyRunning(
                f"{self.path.parent}: cannot use the store ({exc.strerror})"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise AlreadyRunning(
                f"{self.path.parent}: another wabot (pid {holder}) is running on this store"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
