"""What the PostgreSQL benchmarks share: the server, a skip without one, a schema of their own."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator

import psycopg

from bench.workspace import progress
from events.postgres import label

DSN = os.environ.get("WABOT_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def unreachable(bench: str) -> bool:
    """True (and one line on stderr) when there is no server: the benchmark is skipped."""
    try:
        psycopg.connect(DSN, connect_timeout=3).close()
    except psycopg.Error:
        progress(
            f"{bench}: skipped: PostgreSQL not reachable at {label(DSN)}: set WABOT_BENCH_PG_DSN"
        )
        return True
    return False


@contextlib.contextmanager
def scratch_schema() -> Iterator[str]:
    """A schema name of this run's own; the schema is dropped at the end, whatever happened."""
    schema = f"wabot_bench_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        yield schema
    finally:
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
