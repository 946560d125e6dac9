"""A refold the daemon still needs runs in a worker thread; the loop answers meanwhile."""

import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

from events.model import Compacted, MessageReceived
from events.protocol import LogReader, Selection
from events.sqlite import SQLiteLog
from pipeline.daemon._folded_log import FoldedLog
from projections import queue
from projections.fold import fold
from projections.runner import Runner

ALICE = "491701111111@s.whatsapp.net"
BOB = "491702222222@s.whatsapp.net"


def msg(n: int, chat: str) -> MessageReceived:
    return MessageReceived(chat=chat, msg_id=f"m{n}", sender=chat, text=f"t{n}")


@pytest.fixture
def log(tmp_path: Path) -> Iterator[SQLiteLog]:
    log = SQLiteLog(tmp_path / "events.db")
    yield log
    log.close()


def legacy_forget(log: SQLiteLog, path: Path, chat: str) -> None:
    """What an older version did: delete a chat's events, record a marker that lists nothing."""
    with sqlite3.connect(path) as db:
        removed = db.execute("DELETE FROM events WHERE chat = ?", (chat,)).rowcount
        last = db.execute("SELECT max(seq) FROM events").fetchone()[0]
    log.append(Compacted(reason="forget", before=last + 1, removed=removed))


def pending(folded: FoldedLog, chat: str) -> list[str]:
    return [i.message.msg_id for i in queue.pending(folded.view.queue, chat)]


class Gate:
    """Holds ``Runner.refolded`` in its worker thread until released."""

    def __init__(self, refolded: Callable[[LogReader], Runner]) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.threads: list[int] = []
        self._refolded = refolded

    def refolded(self, log: LogReader) -> Runner:
        self.threads.append(threading.get_ident())
        self.entered.set()
        self.release.wait(timeout=60)  # a refold on the loop thread would never be released
        return self._refolded(log)


@pytest.mark.anyio
async def test_the_loop_answers_from_the_old_view_while_a_worker_refolds(
    log, tmp_path, monkeypatch
):
    log.append(msg(1, ALICE), msg(2, BOB))
    folded = FoldedLog(log)
    legacy_forget(log, tmp_path / "events.db", ALICE)
    folded.catch_up()
    assert folded.stale
    gate = Gate(Runner.refolded)
    monkeypatch.setattr(Runner, "refolded", gate.refolded)
    done = anyio.Event()

    async def refold() -> None:
        await folded.refold()
        done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(refold)
        await anyio.to_thread.run_sync(gate.entered.wait)
        # The worker is folding: appends go on, and the view (still the old one) follows them.
        await folded.append(msg(3, BOB))
        assert pending(folded, BOB) == ["m2", "m3"]
        assert pending(folded, ALICE) == ["m1"]  # the old view still has it
        assert folded.stale
        gate.release.set()
        await done.wait()
    assert gate.threads != [threading.get_ident()]  # not folded on the loop's thread
    assert not folded.stale
    assert pending(folded, ALICE) == []
    assert pending(folded, BOB) == ["m2", "m3"]
    assert folded.view == fold(log.read())
    # The records appended while the worker folded were returned once, not again.
    assert folded.catch_up() == []


@pytest.mark.anyio
async def test_keep_current_refolds_once_the_view_goes_stale(log, tmp_path):
    log.append(msg(1, ALICE), msg(2, BOB))
    folded = FoldedLog(log)
    async with anyio.create_task_group() as tg:
        tg.start_soon(folded.keep_current)
        await anyio.lowlevel.checkpoint()
        # A marker that says what went is absorbed: nothing to refold.
        log.compact("forget", Selection(chats=frozenset({BOB})))
        folded.catch_up()
        assert not folded.stale
        assert pending(folded, BOB) == []
        legacy_forget(log, tmp_path / "events.db", ALICE)
        swapped = folded.waker()
        folded.catch_up()
        assert folded.stale
        while folded.stale:
            await swapped.wait(60)  # a swap wakes every waker: the view changed
        tg.cancel_scope.cancel()
    assert folded.view == fold(log.read())


@pytest.mark.anyio
async def test_a_start_with_a_marker_to_refold_serves_the_snapshot_meanwhile(log, tmp_path):
    log.append(msg(1, ALICE), msg(2, BOB))
    Runner.start(log).snapshot(log)
    legacy_forget(log, tmp_path / "events.db", ALICE)
    folded = FoldedLog(log)
    assert folded.stale
    assert pending(folded, ALICE) == ["m1"]
    await folded.refold()
    assert pending(folded, ALICE) == []
    assert folded.view == fold(log.read())
