"""The PostgreSQL logs bound to the backend-independent contracts, plus their own specifics.

Needs a server: ``WABOT_TEST_PG_DSN`` (default postgres@127.0.0.1:5432/test).
Without one the module is skipped, unless ``WABOT_REQUIRE_PG=1`` (CI) makes
that a failure. Everything is created in one schema per run, dropped after.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from events import MessageReceived
from events.backends import open_log, open_reader
from events.pg_schema import SCHEMA_VERSION, label
from events.postgres import PostgresLog, PostgresReader
from events.protocol import Keyed, LogError, LogReader, LogWriter, NoLog, Selection
from events.sqlite import SQLiteLog
from events.testing import DurableLogContract, ReaderContract, compacted, message
from tests.pg_support import DSN, SCHEMA_ENV, log_name, pg_reader


def _unreachable() -> str | None:
    try:
        psycopg.connect(DSN, connect_timeout=3).close()
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]
    return None


_PROBLEM = _unreachable()
if _PROBLEM is not None:
    _WHY = f"PostgreSQL not reachable at {label(DSN)} ({_PROBLEM}): set WABOT_TEST_PG_DSN"
    if os.environ.get("WABOT_REQUIRE_PG") == "1":
        pytest.fail(f"{_WHY} (WABOT_REQUIRE_PG=1)", pytrace=False)
    pytest.skip(_WHY, allow_module_level=True)


def _admin() -> psycopg.Connection[Any]:
    return psycopg.connect(DSN, autocommit=True)


@pytest.fixture(scope="module", autouse=True)
def schema() -> Iterator[str]:
    """A schema of this run's own; writer processes inherit its name."""
    name = f"wabot_test_{os.getpid()}_{secrets.token_hex(4)}"
    os.environ[SCHEMA_ENV] = name
    try:
        yield name
    finally:
        del os.environ[SCHEMA_ENV]
        with _admin() as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


@pytest.fixture
def fresh_schema() -> Iterator[str]:
    """A second schema that nothing has created yet, dropped after the test."""
    name = f"wabot_test_{os.getpid()}_{secrets.token_hex(4)}"
    yield name
    with _admin() as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


class TestPostgresLog(DurableLogContract):
    factory = "tests.pg_support:pg_log"

    def check_integrity(self, path: Path) -> None:
        """The counter is ahead of every stored seq, so no number is handed out twice."""
        s = os.environ[SCHEMA_ENV]
        with _admin() as conn:
            row = conn.execute(
                f"SELECT l.last_seq, max(e.seq) FROM {s}.logs l JOIN {s}.events e"
                " ON e.log_id = l.id WHERE l.name = %s GROUP BY l.last_seq",
                (log_name(path),),
            ).fetchone()
        assert row is not None
        assert row[0] >= row[1]


class TestPostgresReader(ReaderContract):
    """The read-only log reads what the read-write one wrote, on its own connection."""

    factory = "tests.pg_support:pg_log"

    def reader(self, log: LogWriter, path: Path) -> LogReader:
        return pg_reader(path)
