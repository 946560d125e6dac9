"""The PostgreSQL log when the database goes away: waited out, never written twice.

The outage is a TCP proxy the test cuts (``tests/pg_proxy.py``) or backends
ended with ``pg_terminate_backend``; the server itself is shared and stays up.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from events.model import Recorded
from events.postgres import PostgresLog
from events.protocol import Keyed, LogUnavailable
from events.testing import message
from tests.pg_proxy import PgProxy
from tests.pg_support import (
    DSN,
    admin,
    log_name,
    module_schema,  # noqa: F401  (autouse: the module's own schema)
    require_server,
)

require_server()


@pytest.fixture
def proxy() -> Iterator[PgProxy]:
    with PgProxy() as p:
        yield p


def _seqs(log: PostgresLog) -> list[int]:
    return [r.seq for r in log.read()]


def test_a_dropped_connection_is_reopened_and_the_call_made_once_more(
    tmp_path: Path, schema: str
) -> None:
    with PostgresLog(DSN, name=log_name(tmp_path), schema=schema) as log:
        log.append(message(1))
        with admin() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE pid <> pg_backend_pid() AND query LIKE %s",
                (f"%{schema}.%",),
            )
        assert log.append(message(2))[0].seq == 2
        assert _seqs(log) == [1, 2]


def test_an_append_waits_out_an_outage_and_lands_once(
    tmp_path: Path, schema: str, proxy: PgProxy
) -> None:
    log = PostgresLog(proxy.url(DSN), name=log_name(tmp_path), schema=schema, retry_for=60)
    try:
        log.append(message(1))
        proxy.cut()
        done: list[Recorded] = []
        appending = threading.Thread(target=lambda: done.extend(log.append(message(2))))
        appending.start()
        proxy.wait_refused(3)  # the append keeps trying, with backoff
        assert done == []
        proxy.restore()
        appending.join(timeout=30)
        assert [r.seq for r in done] == [2]
        assert _seqs(log) == [1, 2]
    finally:
        log.close()


def test_an_outage_longer_than_retry_for_is_one_line(
    tmp_path: Path, schema: str, proxy: PgProxy
) -> None:
    url = proxy.url(DSN).replace("postgres@", "postgres:s3cret@")
    log = PostgresLog(url, name=log_name(tmp_path), schema=schema, retry_for=0.5)
    try:
        proxy.cut()
        with pytest.raises(LogUnavailable) as caught:
            log.append(message(1))
        text = str(caught.value)
        assert "cannot connect to PostgreSQL" in text or "lost the connection" in text
        assert "\n" not in text
        assert "s3cret" not in text
        proxy.restore()
        assert [r.seq for r in log.append(message(2))] == [1]
    finally:
        log.close()


def test_closing_the_log_ends_an_append_that_waits_for_the_database(
    tmp_path: Path, schema: str, proxy: PgProxy
) -> None:
    log = PostgresLog(proxy.url(DSN), name=log_name(tmp_path), schema=schema, retry_for=None)
    proxy.cut()
    failed: list[BaseException] = []

    def append() -> None:
        try:
            log.append(message(1))
        except BaseException as exc:
            failed.append(exc)

    appending = threading.Thread(target=append)
    appending.start()
    proxy.wait_refused(2)
    log.close()
    appending.join(timeout=30)
    assert not appending.is_alive()
    assert len(failed) == 1


def _lose_the_answer(monkeypatch: pytest.MonkeyPatch, method: str, *, after_commit: bool) -> None:
    """The first call of ``method`` fails as a dropped connection would, after or before it ran."""
    original = getattr(PostgresLog, method)
    calls = {"n": 0}

    def flaky(self: PostgresLog, conn: Any, group: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            if after_commit:
                original(self, conn, group)
            conn.close()  # the connection is gone: the next attempt reopens it
            raise LogUnavailable("connection lost (simulated)")
        original(self, conn, group)

    monkeypatch.setattr(PostgresLog, method, flaky)


@pytest.mark.parametrize("after_commit", [True, False], ids=["committed", "not-committed"])
def test_a_commit_whose_answer_was_lost_is_never_written_twice(
    tmp_path: Path, schema: str, monkeypatch: pytest.MonkeyPatch, after_commit: bool
) -> None:
    with PostgresLog(DSN, name=log_name(tmp_path), schema=schema) as log:
        log.append(message(0))
        _lose_the_answer(monkeypatch, "_insert_plain", after_commit=after_commit)
        got = log.append(message(1), message(2))
        assert [r.seq for r in got] == [2, 3]
        assert [r.event for r in got] == [message(1), message(2)]
        assert _seqs(log) == [1, 2, 3]


@pytest.mark.parametrize("after_commit", [True, False], ids=["committed", "not-committed"])
def test_a_keyed_commit_whose_answer_was_lost_keeps_keys_and_plain_events_once(
    tmp_path: Path, schema: str, monkeypatch: pytest.MonkeyPatch, after_commit: bool
) -> None:
    with PostgresLog(DSN, name=log_name(tmp_path), schema=schema) as log:
        log.append(Keyed(message(0), "k0"))
        _lose_the_answer(monkeypatch, "_insert_keyed", after_commit=after_commit)
        got = log.append(Keyed(message(0), "k0"), message(1), Keyed(message(2), "k2"))
        assert [(r.seq, r.key) for r in got] == [(1, "k0"), (2, None), (3, "k2")]
        assert [(r.seq, r.key) for r in log.read()] == [(1, "k0"), (2, None), (3, "k2")]


def test_many_plain_events_whose_answer_was_lost_land_once_by_copy(
    tmp_path: Path, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with PostgresLog(DSN, name=log_name(tmp_path), schema=schema) as log:
        _lose_the_answer(monkeypatch, "_insert_plain", after_commit=True)
        got = log.append(*(message(n) for n in range(40)))  # the COPY path
        assert [r.seq for r in got] == list(range(1, 41))
        assert _seqs(log) == list(range(1, 41))
