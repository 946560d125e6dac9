"""The PostgreSQL lease: one active daemon per number, a standby that waits, a safe step-down.

In process, with ``settle=0`` (a daemon's 4 s pause before going live is
tested end to end in tests/e2e/test_pg_failover.py) and the process exit
replaced by a recorder.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from events.postgres import Lease, PostgresLog
from events.protocol import LogUnavailable
from pipeline.daemon import EXIT_LEASE_LOST
from pipeline.daemon._lease import SETTLE, LeaseLock
from tests.pg_proxy import PgProxy
from tests.pg_support import admin, own_schema, require_server, schema_url

require_server()

NUMBER = "491700000000"


@pytest.fixture
def url() -> Iterator[str]:
    with own_schema() as schema:
        yield schema_url(schema)


class Exits:
    """Stands in for ``os._exit``: records the status and lets the test await it."""

    def __init__(self) -> None:
        self.codes: list[int] = []
        self.called = threading.Event()

    def __call__(self, code: int) -> None:
        self.codes.append(code)
        self.called.set()


def _named(kind: str, url: str) -> str:
    """The LIKE pattern of this test's lease sessions (other runs share the server)."""
    return f"wabot {kind} {Lease(url, name=NUMBER).tag}%"


def _sessions(kind: str, url: str) -> int:
    with admin() as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE %s",
            (_named(kind, url),),
        ).fetchone()
    return int(row[0]) if row else 0


def _until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Await what another thread or the server brings about."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _terminate(kind: str, url: str) -> None:
    with admin() as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE %s",
            (_named(kind, url),),
        )


def _stepped_down(taken: threading.Event, exits: Exits) -> None:
    """The standby holds the lease and the active daemon ended itself, with status 4."""
    assert taken.wait(10)
    assert exits.called.wait(10)
    assert exits.codes == [EXIT_LEASE_LOST]


def _in_thread(lock: LeaseLock) -> threading.Event:
    taken = threading.Event()

    def acquire() -> None:
        lock.acquire()
        taken.set()

    threading.Thread(target=acquire, daemon=True).start()
    return taken


def test_a_second_daemon_waits_as_standby_and_takes_over_on_release(url: str) -> None:
    first, second = LeaseLock(url, NUMBER, settle=0), LeaseLock(url, NUMBER, settle=0)
    first.acquire()
    try:
        taken = _in_thread(second)
        _until(lambda: _sessions("standby", url) == 1, "the second daemon to wait")
        assert not taken.is_set()
        first.release()
        assert taken.wait(10)
    finally:
        first.release()
        second.release()


def test_another_number_is_never_kept_waiting(url: str) -> None:
    one, other = LeaseLock(url, NUMBER, settle=0), LeaseLock(url, "491709999999", settle=0)
    one.acquire()
    try:
        other.acquire()  # returns at once: another number's lease
    finally:
        one.release()
        other.release()


def test_the_active_daemon_steps_down_at_once_when_a_standby_took_the_lease(url: str) -> None:
    exits = Exits()
    active = LeaseLock(url, NUMBER, settle=0, on_lost=exits)
    standby = LeaseLock(url, NUMBER, settle=0)
    active.acquire()
    try:
        taken = _in_thread(standby)
        _until(lambda: _sessions("standby", url) == 1, "the standby")
        _terminate("active", url)  # e.g. the active's connection reset, the server still up
        _stepped_down(taken, exits)
    finally:
        active.release()
        standby.release()


def test_alone_the_active_daemon_takes_its_lease_back_after_losing_the_connection(
    url: str,
) -> None:
    exits = Exits()
    active = LeaseLock(url, NUMBER, settle=0, on_lost=exits)
    active.acquire()
    try:
        _terminate("active", url)
        _until(lambda: _sessions("active", url) == 0, "the lease connection to go")
        _until(lambda: _sessions("active", url) == 1, "the lease to be taken back")
        assert not exits.called.is_set()
    finally:
        active.release()


def test_cut_off_while_a_standby_waits_the_active_daemon_gives_up_after_its_grace(
    url: str,
) -> None:
    exits = Exits()
    with PgProxy() as proxy:
        active = LeaseLock(proxy.url(url), NUMBER, settle=0, on_lost=exits)
        standby = LeaseLock(url, NUMBER, settle=0)
        active.acquire()
        try:
            taken = _in_thread(standby)
            _until(lambda: active.standbys == 1, "the active daemon to see the standby")
            proxy.cut()  # the active one cannot reach the database; the standby can
            _stepped_down(taken, exits)
        finally:
            active.release()
            standby.release()


def test_an_unreachable_database_at_start_is_one_line_without_the_password() -> None:
    lock = LeaseLock("postgresql://wabot:s3cret@127.0.0.1:1/wabot", NUMBER, settle=0)
    with pytest.raises(LogUnavailable) as caught:
        lock.acquire()
    text = str(caught.value)
    assert text.startswith("postgresql://wabot@127.0.0.1:1/wabot: cannot connect to PostgreSQL")
    assert "\n" not in text
    assert "s3cret" not in text


# -- going live at once after a clean release ---------------------------------------


def _locks(url: str) -> tuple[Callable[[], LeaseLock], list[float]]:
    """Leases that note the waits they would sleep (``SETTLE``) instead of sleeping."""
    PostgresLog(url, name=NUMBER).close()  # the schema at this version: its lease_releases
    slept: list[float] = []
    return lambda: LeaseLock(url, NUMBER, on_lost=Exits(), sleep=slept.append), slept


def test_a_daemon_that_stopped_cleanly_is_followed_without_the_settle_wait(url: str) -> None:
    """``SETTLE`` gives a holder cut off from the database time to notice and end; one that
    stopped and said so has nothing left to notice."""
    lock, slept = _locks(url)
    stopped = lock()
    stopped.acquire()  # from nobody known: waits
    stopped.release(clean=True)
    restarted = lock()
    restarted.acquire()
    restarted.release()
    assert slept == [SETTLE]


def test_a_takeover_from_a_holder_that_did_not_release_cleanly_waits(url: str) -> None:
    """The clean release goes with the lease to the next holder: one who crashed after it
    (or was cut off) leaves none, so whoever follows it waits."""
    lock, slept = _locks(url)
    first = lock()
    first.acquire()
    first.release(clean=True)
    crashed = lock()
    crashed.acquire()  # at once, and takes the clean release with it
    crashed.release()  # as a kill -9 or a lost connection frees it: nothing recorded
    successor = lock()
    successor.acquire()
    successor.release()
    assert slept == [SETTLE, SETTLE]


def test_a_holder_cut_off_from_the_database_cannot_record_a_clean_release(url: str) -> None:
    lock, slept = _locks(url)
    cut_off = Lease(url, name=NUMBER)
    assert cut_off.take("pid 1 on gone")
    _terminate("active", url)  # the server ended its session: the lock is free
    _until(lambda: _sessions("active", url) == 0, "the session to end")
    cut_off.release(clean=True)  # too late: nothing recorded on a session gone
    successor = lock()
    successor.acquire()
    successor.release()
    assert slept == [SETTLE]
