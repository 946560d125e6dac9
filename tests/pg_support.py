"""Where the PostgreSQL tests find their server, and one log per test derived from a path.

The contract suites hand a backend a path (``tmp_path / "events.db"``) and
pass the same path to writer processes. A PostgreSQL log is named after it,
in the schema ``WABOT_TEST_PG_SCHEMA`` that the test module creates for its
run (and drops after), so writer processes inherit the schema and find the
test's log, and every test's log shares the tables as several numbers would.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from events.postgres import PostgresLog, PostgresReader, label, with_schema

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


def require_server() -> None:
    """Skip the calling module without a server (one line), or fail with WABOT_REQUIRE_PG=1."""
    try:
        psycopg.connect(DSN, connect_timeout=3).close()
    except psycopg.Error as exc:
        why = str(exc).strip().splitlines()[0]
        message = f"PostgreSQL not reachable at {label(DSN)} ({why}): set WABOT_TEST_PG_DSN"
        if os.environ.get("WABOT_REQUIRE_PG") == "1":
            pytest.fail(f"{message} (WABOT_REQUIRE_PG=1)", pytrace=False)
        pytest.skip(message, allow_module_level=True)


def admin() -> psycopg.Connection[Any]:
    return psycopg.connect(DSN, autocommit=True)


@contextlib.contextmanager
def own_schema() -> Iterator[str]:
    """A schema of the caller's own (named in ``WABOT_TEST_PG_SCHEMA``), dropped after."""
    name = f"wabot_test_{os.getpid()}_{secrets.token_hex(4)}"
    os.environ[SCHEMA_ENV] = name
    try:
        yield name
    finally:
        os.environ.pop(SCHEMA_ENV, None)
        with admin() as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def schema_url(schema: str, dsn: str = DSN) -> str:
    """``dsn`` with ``?schema=``: how a user points wabot at a schema of their choice."""
    return with_schema(dsn, schema)


@pytest.fixture(scope="module", autouse=True, name="schema")
def module_schema() -> Iterator[str]:
    """The test module's own schema (import this fixture); writer processes inherit its name."""
    with own_schema() as name:
        yield name
