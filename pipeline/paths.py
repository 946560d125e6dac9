"""Where the command line finds things: the store directory, the .env file, the log's URL.

Shared by ``python -m pipeline`` and ``python replay.py``. ``DaemonLock`` is the
store's lock, held by its daemon (``run``) and by ``migrate``, which must not copy
a log while a daemon appends to it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from events.owner_only import open_private, private_dir
from pipeline.config import ConfigError, Environment, dsn_problem

STORE_HELP = "data directory (default $WABOT_STORE, else ./store)"
LOG_URL_VAR = "WABOT_LOG_URL"
LOG_URL_HELP = (
    f"postgresql://… DSN of the log (default store.url, else STORE/events.db; ${LOG_URL_VAR},"
    " when set, wins over this option)"
)
# In the store: held (flock) by the running daemon, so anyone can tell whether one runs.
LOCK_NAME = "daemon.lock"


def store_dir(arg: Path | None, env: Path | None) -> Path:
    """``--store``, else ``WABOT_STORE`` (environment, then .env), else ``./store``."""
    if arg is not None:
        return arg
    return Path(_environment(env).get("WABOT_STORE") or "store")


def _environment(env: Path | None) -> Environment:
    """The environment over ``env`` (a missing file is reported where app.json is read)."""
    return Environment(env if env is not None and env.is_file() else None, os.environ)


def env_file(arg: Path | None) -> Path | None:
    """An explicit ``--env`` must exist; the default ``./.env`` is used only if present."""
    if arg is not None:
        return arg
    default = Path(".env")
    return default if default.is_file() else None


def log_url(arg: str | None, env: Path | None, configured: str | None) -> str | None:
    """The ``postgresql://`` DSN of the log, or None for ``STORE/events.db``.

    ``WABOT_LOG_URL`` (environment, then .env) wins, then ``--log-url``, then
    ``store.url`` of app.json (already checked when app.json was read).
    """
    environment = _environment(env)
    for source, name, url in (
        (environment.source_of(LOG_URL_VAR), LOG_URL_VAR, environment.get(LOG_URL_VAR)),
        ("command line", "--log-url", arg),
    ):
        if url:
            if problem := dsn_problem(url):
                raise ConfigError(source, f"{name}: {problem}")
            return url
    return configured


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

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
