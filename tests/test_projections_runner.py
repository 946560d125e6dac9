"""The runner against a real SQLite log: snapshots, catch-up and refolds on compaction."""

from collections.abc import Collection, Iterator
from pathlib import Path

import msgspec
import pytest

from events.model import LlmRequested, MessageReceived, MessageSkipped, Recorded, TransportStatus
from events.protocol import Selection
from events.sqlite import SQLiteLog
from events.testing import FakeClock
from projections import queue
from projections.fold import SNAPSHOT_VERSION, encode, fold
from projections.runner import SNAPSHOT_NAME, Runner

ALICE = "491701111111@s.whatsapp.net"
BOB = "491702222222@s.whatsapp.net"


class CountingLog(SQLiteLog):
    """Records where each read started, to tell a snapshot start from a refold."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, clock=FakeClock())
        self.reads: list[int] = []

    def read(
        self, after: int = 0, *, chats: Collection[str] | None = None, limit: int | None = None
    ) -> Iterator[Recorded]:
        self.reads.append(after)
        return super().read(after, chats=chats, limit=limit)


@pytest.fixture
def log(tmp_path: Path) -> Iterator[CountingLog]:
    log = CountingLog(tmp_path / "events.db")
    yield log
    log.close()


def msg(n: int, chat: str = ALICE) -> MessageReceived:
    return MessageReceived(chat=chat, msg_id=f"m{n}", sender=chat, text=f"t{n}")


def assert_current(runner: Runner, log: SQLiteLog) -> None:
    full = fold(log.read())
    assert runner.states == full
    assert runner.states.queue == full.queue
    assert runner.seq == log.last_seq()


def test_start_and_catch_up_follow_the_log(log):
    log.append(msg(1), msg(2, BOB))
    runner = Runner.start(log)
    assert queue.chats_with_work(runner.states.queue) == [ALICE, BOB]
    assert runner.catch_up() == []
    new = log.append(msg(3), MessageSkipped(chat=BOB, msg_id="m2", reason="echo"))
    assert runner.catch_up() == new
    assert queue.chats_with_work(runner.states.queue) == [ALICE]
    assert_current(runner, log)


def test_snapshot_plus_tail_equals_full_fold(log):
    log.append(*[msg(n) for n in range(20)])
    Runner.start(log).snapshot(log)
    log.append(msg(99, BOB), MessageSkipped(chat=ALICE, msg_id="m3", reason="stale"))
    log.reads.clear()
    runner = Runner.start(log)
    assert log.reads == [20]  # resumed from the snapshot, not from the start
    assert_current(runner, log)


def test_unusable_snapshots_are_ignored(log):
    log.append(msg(1), msg(2))
    log.save_snapshot(SNAPSHOT_NAME, SNAPSHOT_VERSION, 2, b"not msgpack")
    assert_current(Runner.start(log), log)
    log.save_snapshot(
        SNAPSHOT_NAME, SNAPSHOT_VERSION, 50, encode(msgspec.structs.replace(fold([]), seq=50))
    )
    assert_current(Runner.start(log), log)
    Runner.start(log).snapshot(log)
    log.reads.clear()
    Runner.start(log, [queue.PROJECTION])  # a different set of projections: not that snapshot
    assert log.reads == [0]


def test_compaction_refolds_from_the_compacted_log(log):
    log.append(msg(1), msg(2, BOB), msg(3))
    runner = Runner.start(log)
    runner.snapshot(log)
    marker = log.compact("forget", Selection(chats=frozenset({ALICE})))
    assert marker is not None
    later = log.append(msg(4, BOB))
    assert runner.catch_up() == [marker, *later]
    assert queue.chats_with_work(runner.states.queue) == [BOB]
    assert [i.msg_id for i in queue.pending(runner.states.queue, BOB)] == ["m2", "m4"]
    assert_current(runner, log)
    # A start from the pre-compaction snapshot must refold as well.
    assert_current(Runner.start(log), log)


def test_refold_reports_only_records_the_caller_has_not_seen(log):
    log.append(msg(1), msg(2))
    runner = Runner.start(log)
    first = log.append(msg(3, BOB))
    marker = log.compact("forget", Selection(chats=frozenset({ALICE})))
    last = log.append(
        LlmRequested(
            chat=BOB,
            call_id="c",
            session_id="s",
            trigger_ids=["m3"],
            model="m",
            params={},
            messages=[],
            config_hash="h",
        )
    )
    assert runner.catch_up() == [*first, marker, *last]
    assert_current(runner, log)


def test_compacting_what_nothing_needs_leaves_every_decision_state_alone(log):
    # Superseded connection states are needed by nothing but the log's counters.
    log.append(TransportStatus(state="connecting"), msg(1), TransportStatus(state="connected"))
    log.append(
        msg(2, BOB), TransportStatus(state="disconnected"), TransportStatus(state="connected")
    )
    runner = Runner.start(log)
    runner.snapshot(log)
    before = fold(log.read())
    latest = max(r.seq for r in log.read() if isinstance(r.event, TransportStatus))

    superseded = frozenset(
        r.seq for r in log.read() if isinstance(r.event, TransportStatus) and r.seq < latest
    )
    marker = log.compact("rotation", Selection(seqs=superseded))
    assert marker is not None
    assert marker.event.removed == 3

    after_full = fold(log.read())
    runner.catch_up()
    from_snapshot = Runner.start(log)
    for states in (after_full, runner.states, from_snapshot.states):
        for name in ("queue", "outbox", "sessions", "echo", "aliases", "budget", "takeover"):
            assert getattr(states, name) == getattr(before, name), name
        assert states.stats.transport_state == "connected"
        assert states.stats.compacted == 3
    assert runner.states == from_snapshot.states == after_full
