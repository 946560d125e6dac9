"""The store's lock, ``STORE/daemon.lock``: held by its daemon (``run``) and by
``migrate``, which must not copy a log (nor move its media) while a daemon appends
to it. Here, not in ``pipeline.daemon``, because a tool takes it too and no tool
loads the daemon.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from events.owner_only import open_private, private_dir

LOCK_NAME = "daemon.lock"


class AlreadyRunning(Exception):
    """The store is held by another daemon, or cannot be used at all (exit 2, one line)."""


class DaemonLock:
    """``flock`` on ``STORE/daemon.lock``: held by the store's daemon, or by a tool
    that must not run beside one; ``acquire`` raises ``AlreadyRunning`` at once."""

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

    def release(self, *, clean: bool = False) -> None:
        """``clean`` says nothing here: no daemon waits for a store's lock, one refused stops."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
