"""Nothing WhatsApp has acknowledged is lost (issue 18.5).

whatsmeow acknowledges a message once neonize's Go handler has queued it; the
Go callback into Python (``client.event.execute``) must therefore not return
before the daemon has recorded the message. These tests drive the real
neonize callback entry point from a thread, as Go does, into the daemon's real
intake and a real SQLite log: in-process, with the log's write lock held by
another connection, and in a child process killed with -9.
"""

from __future__ import annotations

import tests.neonize_quiet  # noqa: F401  (first: see there)

# isort: split
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message

from events.backends import open_log
from events.model import AnyEvent, MessageReceived, Recorded, TransportStatus
from events.protocol import Guard, Keyed, LogWriter
from pipeline.transport import Inbound
from tests.neonize_fakes import dispatch, message_ev, transport_factory
from tests.neonize_wired import WAIT, text, wired

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]


async def test_when_the_go_callback_returns_the_message_is_in_the_log(tmp_path: Path) -> None:
    async with wired(tmp_path) as w:
        for n in range(20):
            await dispatch(w.client, text(f"M{n}"))
            assert w.received()[-1:] == [f"M{n}"]  # read before anything else can run


async def test_an_unmonitored_chats_message_is_settled_without_a_record(tmp_path: Path) -> None:
    stranger = message_ev(Message(conversation="hi"), chat="491709999999@s.whatsapp.net")
    async with wired(tmp_path) as w:
        with anyio.fail_after(WAIT):
            await dispatch(w.client, stranger)
        await dispatch(w.client, text("M1"))
        assert w.received() == ["M1"]
        assert w.intake.dropped == 1


class Watched:
    """A log whose appends say when they begin (the test holds the lock they wait for)."""

    def __init__(self, log: LogWriter) -> None:
        self._log = log
        self.appending = threading.Event()

    def append(self, *items: AnyEvent | Keyed, guard: Guard | None = None) -> list[Recorded]:
        self.appending.set()
        return self._log.append(*items, guard=guard)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)


@pytest.fixture
def write_lock(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """Another connection to the store's log, to hold its write lock with."""
    open_log(tmp_path).close()
    other = sqlite3.connect(tmp_path / "events.db", isolation_level=None)
    yield other
    other.close()


async def test_the_go_callback_waits_while_the_log_is_locked(
    tmp_path: Path, write_lock: sqlite3.Connection
) -> None:
    watched: list[Watched] = []

    def watch(log: LogWriter) -> Any:
        watched.append(Watched(log))
        return watched[0]

    async with wired(tmp_path, wrap_log=watch) as w:
        returned = anyio.Event()

        async def go_calls() -> None:
            await dispatch(w.client, text("M1"))
            returned.set()

        watched[0].appending.clear()
        write_lock.execute("BEGIN IMMEDIATE")  # as a compaction or another writer would
        async with anyio.create_task_group() as tg:
            tg.start_soon(go_calls)
            with anyio.fail_after(WAIT):
                await anyio.to_thread.run_sync(watched[0].appending.wait)
            assert not returned.is_set()  # the append waits for the lock: so does Go
            write_lock.execute("COMMIT")
            with anyio.fail_after(WAIT):
                await returned.wait()
        assert w.received() == ["M1"]


def test_a_kill_9_loses_no_message_the_go_callback_returned_for(tmp_path: Path) -> None:
    """Each ``acked`` line is printed the moment the Go callback returned, as whatsmeow
    would send its receipt; after kill -9 every one of them is in the log."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.neonize_wired", str(tmp_path), "100000"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    acked: list[str] = []
    try:
        assert child.stdout is not None
        for line in child.stdout:
            if line.startswith("acked "):
                acked.append(line.split()[1])
            if len(acked) == 200:
                break
        os.kill(child.pid, signal.SIGKILL)
        acked += [line.split()[1] for line in child.stdout if line.startswith("acked ")]
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()

    log = open_log(tmp_path)
    try:
        recorded = [r.event.msg_id for r in log.read() if isinstance(r.event, MessageReceived)]
    finally:
        log.close()
    assert len(acked) >= 200
    assert set(acked) <= set(recorded)
    assert recorded[: len(acked)] == acked  # in arrival order, none skipped


async def test_the_go_callback_waits_for_a_stuck_daemon_only_so_long(tmp_path: Path) -> None:
    """Bounded: a daemon that never takes the fact costs each event ``record_wait``."""
    transport, _ = transport_factory(tmp_path)(record_wait=0.2)
    took = anyio.Event()

    async def stuck(_: Inbound) -> bool:
        took.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def status(_: TransportStatus) -> None:
        pass

    async with anyio.create_task_group() as tg:
        tg.start_soon(transport.run, stuck, status)
        with anyio.fail_after(WAIT):
            await dispatch(transport._client, text("M1"))  # returns although never recorded
            await took.wait()
        tg.cancel_scope.cancel()
    await transport.aclose()


async def test_closing_the_transport_releases_a_waiting_go_callback(tmp_path: Path) -> None:
    transport, _ = transport_factory(tmp_path)()
    took = anyio.Event()

    async def stuck(_: Inbound) -> bool:
        took.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def status(_: TransportStatus) -> None:
        pass

    returned = anyio.Event()

    async def go_calls() -> None:
        await dispatch(transport._client, text("M1"))
        returned.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(transport.run, stuck, status)
        tg.start_soon(go_calls)
        with anyio.fail_after(WAIT):
            await took.wait()
            assert not returned.is_set()
            await transport.aclose()  # shutting down: Go must not wait for a record
            await returned.wait()
        tg.cancel_scope.cancel()
