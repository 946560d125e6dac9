"""Where the command line finds things: the store directory, the .env file, the log's URL.

Shared by ``python -m pipeline`` and ``python replay.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import dotenv_values

from pipeline.config import ConfigError, dsn_problem

STORE_HELP = "data directory (default $WABOT_STORE, else ./store)"
# In the store: held (flock) by the running daemon, so anyone can tell whether one runs.
LOCK_NAME = "daemon.lock"


def store_dir(arg: Path | None, env: Path | None) -> Path:
    """``--store``, else ``WABOT_STORE`` (environment, then .env), else ``./store``."""
    if arg is not None:
        return arg
    from_file = dotenv_values(env).get("WABOT_STORE") if env is not None and env.is_file() else None
    return Path(os.environ.get("WABOT_STORE") or from_file or "store")


def env_file(arg: Path | None) -> Path | None:
    """An explicit ``--env`` must exist; the default ``./.env`` is used only if present."""
    if arg is not None:
        return arg
    default = Path(".env")
    return default if default.is_file() else None


LOG_URL_VAR = "WABOT_LOG_URL"


def log_url(arg: str | None, env: Path | None, configured: str | None) -> str | None:
    """The ``postgresql://`` DSN of the log, or None for ``STORE/events.db``.

    ``WABOT_LOG_URL`` (environment, then .env) wins, then ``--log-url``, then
    ``store.url`` of app.json (already checked when app.json was read).
    """
    # Literal values, as load_config reads .env: a password may well contain a "$".
    from_file = (
        dotenv_values(env, interpolate=False).get(LOG_URL_VAR)
        if env is not None and env.is_file()
        else None
    )
    for source, url in (
        (LOG_URL_VAR, os.environ.get(LOG_URL_VAR) or from_file),
        ("--log-url", arg),
    ):
        if url:
            if problem := dsn_problem(url):
                raise ConfigError(
                    "environment" if source == LOG_URL_VAR else "command line",
                    f"{source}: {problem}",
                )
            return url
    return configured
