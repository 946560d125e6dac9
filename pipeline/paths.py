"""Where the command line finds things: the store directory, the .env file, the log's URL.

Shared by ``python -m pipeline`` and ``python replay.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.config import ConfigError, Environment, dsn_problem

STORE_HELP = "data directory (default $WABOT_STORE, else ./store)"
LOG_URL_VAR = "WABOT_LOG_URL"
LOG_URL_HELP = (
    f"postgresql://… DSN of the log (default store.url, else STORE/events.db; ${LOG_URL_VAR},"
    " when set, wins over this option)"
)
# In the store: held (flock) by the running daemon, so anyone can tell whether one runs.


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
