"""Where the command line finds things: the store directory and the .env file.

Shared by ``python -m pipeline`` and ``python replay.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import dotenv_values

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
