"""Where the PostgreSQL tests find their server, and one log per test derived from a path.

The contract suites hand a backend a path (``tmp_path / "events.db"``) and
pass the same path to writer processes. A PostgreSQL log is named after it,
in the schema ``WABOT_TEST_PG_SCHEMA`` that the test module creates for its
run (and drops after), so writer processes inherit the schema and find the
test's log, and every test's log shares the tables as several numbers would.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from events.postgres import PostgresLog, PostgresReader

DSN = os.environ.get("WABOT_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
SCHEMA_ENV = "WABOT_TEST_PG_SCHEMA"


def schema() -> str:
    return os.environ[SCHEMA_ENV]


def log_name(path: Path) -> str:
    """A log name unique to ``path``, shaped like a phone number as the daemon's are."""
    digest = hashlib.sha1(str(Path(path).resolve()).encode(), usedforsecurity=False)
    return str(int(digest.hexdigest()[:12], 16)).zfill(15)


def pg_log(path: Path, **kw: Any) -> PostgresLog:
    """The contract's factory: ``path`` selects the log, the environment the server."""
    return PostgresLog(DSN, name=log_name(path), schema=schema(), **kw)


def pg_reader(path: Path) -> PostgresReader:
    return PostgresReader(DSN, name=log_name(path), schema=schema())
