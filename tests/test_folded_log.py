"""The daemon folds each of its commits once, from the records its append returned.

Nothing this process appends is read back; records that return out of order
wait for the ones before them; a commit whose records never return (an append
abandoned on a timeout) or a gap left by another process is read from the log.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Collection, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from events.model import Compacted, MessageReceived, Recorded, ReplySent
from events.protocol import Guard, Keyed, LogError, Selection
from events.sqlite import SQLiteLog
from pipeline.daemon._folded_log import FoldedLog, Waker
from projections import deliveries, queue
from projections.fold import SNAPSHOT_VERSION, fold
from projections.runner import SNAPSHOT_NAME, Runner

ALICE = "491701111111@s.whatsapp.net"


class CountingLog(SQLiteLog):
    """A real SQLite log that counts the reads that reach the database."""

    reads = 0

    def read(
        self, after: int = 0, *, chats: Collection[str] | None = None, limit: int | None = None
    ) -> Iterator[Recorded]:
        self.reads += 1
        return super().read(after, chats=chats, limit=limit)


class HeldLog(CountingLog):
    """Appends of a message with the text "slow" wait for ``release``: after they
    commit, or (``before``) before, as a database that is away holds them."""

    def __init__(self, path: Path, *, before: bool = False) -> None:
        super().__init__(path)
        self.before = before
        self.release = threading.Event()
        self.entered = threading.Event()

    def append(self, *items: Any, guard: Guard | None = None) -> list[Recorded]:
        slow = any(getattr(getattr(e, "event", e), "text", "") == "slow" for e in items)
        if slow and self.before:
            self.entered.set()
            self.release.wait(30)
        recs = super().append(*items, guard=guard)
        if slow and not self.before:
            self.entered.set()
            self.release.wait(30)
        return recs

    def append_now(self, *items: Any, guard: Guard | None = None) -> None:
        """Never on the caller's thread: every append goes through ``append`` and its hold."""
        return


def msg(n: int, text: str = "") -> MessageReceived:
    return MessageReceived(chat=ALICE, msg_id=f"m{n}", sender=ALICE, text=text or f"t{n}")


def pending(folded: FoldedLog) -> list[str]:
    return [i.message.msg_id for i in queue.pending(folded.view.queue, ALICE)]


@pytest.fixture
def counting(tmp_path: Path) -> Iterator[CountingLog]:
    log = CountingLog(tmp_path / "events.db")
    yield log
    log.close()


@pytest.mark.anyio
async def test_appends_are_folded_without_a_read(counting: CountingLog) -> None:
    folded = FoldedLog(counting)
    folded.watch()
    reads = counting.reads
    for n in range(20):
        await folded.append(msg(n))
    await anyio.lowlevel.checkpoint()  # the commit callbacks have run
    assert counting.reads == reads
    assert pending(folded) == [f"m{n}" for n in range(20)]
    assert folded.view == fold(counting.read())


@pytest.mark.anyio
async def test_a_waker_wakes_for_the_commits_that_change_what_its_loop_reads(
    counting: CountingLog,
) -> None:
    folded = FoldedLog(counting)
    folded.watch()
    every, receipts = folded.waker(), folded.waker([deliveries.PROJECTION])
    await folded.append(msg(1))
    assert (every.due, receipts.due) == (True, False)  # no send: nothing to match
    await every.wait(0)
    await folded.append(ReplySent(chat=ALICE, reply_id="r1", wa_id="W1", sent_at=1.0))
    assert (every.due, receipts.due) == (True, True)
    await every.wait(0)
    await receipts.wait(0)
    await folded.append(Compacted(reason="expiry", before=1, removed=0, seqs=[], keep=[]))
    assert (every.due, receipts.due) == (True, True)  # a compaction changes every view


@pytest.mark.anyio
async def test_a_redelivered_key_is_not_folded_twice(counting: CountingLog) -> None:
    folded = FoldedLog(counting)
    folded.watch()
    await folded.append(Keyed(msg(1), "k1"))
    await folded.append(Keyed(msg(1), "k1"), msg(2))
    assert pending(folded) == ["m1", "m2"]
    assert folded.view == fold(counting.read())


@pytest.mark.anyio
async def test_an_append_returns_with_its_records_in_the_view(tmp_path: Path) -> None:
    log = HeldLog(tmp_path / "events.db")
    folded = FoldedLog(log)
    folded.watch()
    seen: list[list[str]] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(folded.append, msg(1, "slow"))
        await anyio.to_thread.run_sync(log.entered.wait, 30)
        await folded.append(msg(2))  # committed after m1, returned before it
        seen.append(pending(folded))
        reads = log.reads
        log.release.set()
    # Whoever appended sees its own records at once (the agent acts on the queue
    # next): the earlier commit, still on its way back, was read for it.
    assert seen == [["m1", "m2"]]
    assert pending(folded) == ["m1", "m2"]
    assert log.reads == reads  # m1's own return folded nothing twice, read nothing
    assert folded.view == fold(log.read())
    log.close()


@pytest.mark.anyio
@pytest.mark.parametrize("commits", ["before", "after"])
async def test_an_abandoned_append_that_commits_is_read(tmp_path: Path, commits: str) -> None:
    """Given up on (OutageBuffer's timeout) before or after it commits: read either way."""
    log = HeldLog(tmp_path / "events.db", before=commits == "after")
    folded = FoldedLog(log)
    folded.watch()
    woken = folded.waker()
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: folded.append(msg(1, "slow"), abandon_on_cancel=True))
        await anyio.to_thread.run_sync(log.entered.wait, 30)
        tg.cancel_scope.cancel()  # given up on: the append goes on in its thread
    log.release.set()
    with anyio.fail_after(30):
        while pending(folded) != ["m1"]:
            await woken.wait(30)
    assert folded.view == fold(log.read())
    log.close()


@pytest.mark.anyio
async def test_another_writers_record_in_the_gap_is_read(
    counting: CountingLog, tmp_path: Path
) -> None:
    folded = FoldedLog(counting)
    folded.watch()
    with SQLiteLog(tmp_path / "events.db") as other:  # another process's writer
        other.append(msg(1))
    await folded.append(msg(2))
    assert pending(folded) == ["m1", "m2"]
    assert folded.view == fold(counting.read())


def watched(log: CountingLog) -> tuple[FoldedLog, list[int]]:
    """A watching FoldedLog on ``log``, and the threads its commits are made on, in order."""
    folded = FoldedLog(log)
    folded.watch()
    committers: list[int] = []
    log.subscribe(lambda _seq: committers.append(threading.get_ident()))
    return folded, committers


@pytest.mark.anyio
async def test_an_append_with_the_lock_free_commits_on_the_loop(counting: CountingLog) -> None:
    """No thread hand-off when the commit cannot wait (SQLite, NORMAL, lock free)."""
    folded, committers = watched(counting)
    await folded.append(msg(1))
    assert committers == [threading.get_ident()]
    assert pending(folded) == ["m1"]


@pytest.mark.anyio
async def test_an_append_with_the_lock_taken_waits_in_a_thread(counting: CountingLog) -> None:
    folded, committers = watched(counting)
    lock = counting._group.lock
    lock.acquire()
    async with anyio.create_task_group() as tg:
        tg.start_soon(folded.append, msg(1))
        await anyio.wait_all_tasks_blocked()
        assert pending(folded) == []  # the loop goes on while the append waits
        lock.release()
    assert committers != [threading.get_ident()]
    assert pending(folded) == ["m1"]


@pytest.mark.anyio
async def test_a_waker_returns_at_a_wake_up_or_at_its_timeout() -> None:
    waker = Waker()
    await waker.wait(0.001)  # nothing woke it: the timeout ends the wait
    assert not waker.due
    waker.wake()
    await waker.wait(math.inf)  # woken between two waits: returns at once
    async with anyio.create_task_group() as tg:
        tg.start_soon(waker.wait, math.inf)
        await anyio.wait_all_tasks_blocked()
        waker.wake()  # ends the wait, or the task group never exits
    assert not waker.due


def test_the_daemon_starting_finishes_a_compaction_a_failure_left(tmp_path: Path) -> None:
    """A forget whose marker failed after its deletes (a full disk): the daemon's next
    start records the marker before folding, and neither its state nor a snapshot
    keeps the forgotten chat's words."""
    bob = "491702222222@s.whatsapp.net"
    path = tmp_path / "events.db"

    def said(chat: str, n: int) -> MessageReceived:
        return MessageReceived(chat=chat, msg_id=f"{chat}{n}", sender=chat, text=f"{chat} says")

    with closing(SQLiteLog(path)) as log:
        log.append(*(said(ALICE, n) for n in range(3)), *(said(bob, n) for n in range(600)))
        Runner.start(log).snapshot(log)  # the running daemon's, folded with Bob's words
        held = log.load_snapshot(SNAPSHOT_NAME, SNAPSHOT_VERSION)
        assert held is not None
        assert f"{bob} says".encode() in held[1]
        with closing(sqlite3.connect(path, isolation_level=None)) as db:
            db.execute(
                "CREATE TRIGGER disk_full BEFORE INSERT ON events WHEN NEW.type = 'Compacted'"
                " BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
            )
            with pytest.raises(LogError, match="database or disk is full"):
                log.compact("forget", Selection(chats=frozenset({bob})))
            db.execute("DROP TRIGGER disk_full")
    with closing(SQLiteLog(path)) as log:  # the daemon starting again
        folded = FoldedLog(log)
        (marker,) = (r.event for r in log.read() if isinstance(r.event, Compacted))
        assert (marker.reason, marker.removed, marker.chats) == ("forget", 600, [bob])
        state = msgspec.json.encode(folded.view)
        assert f"{bob} says".encode() not in state
        assert f"{ALICE} says".encode() in state
        assert log.load_snapshot(SNAPSHOT_NAME, SNAPSHOT_VERSION) is None
        assert len([r for r in log.read() if r.chat == ALICE]) == 3


def test_the_daemon_starts_when_the_compaction_left_cannot_be_finished_yet(
    tmp_path: Path,
) -> None:
    """The disk still full: the marker waits for the next rotation; the fold goes on."""

    class StillFull(SQLiteLog):
        def finish_compactions(self) -> list[Recorded]:
            raise LogError("event log write failed: database or disk is full")

    with closing(StillFull(tmp_path / "events.db")) as log:
        log.append(MessageReceived(chat=ALICE, msg_id="M1", sender=ALICE, text="hi"))
        assert FoldedLog(log).view.seq == 1
