"""The runner against a real SQLite log: snapshots, catch-up, compactions absorbed or refolded."""

import sqlite3
from collections.abc import Collection, Iterator
from pathlib import Path

import msgspec
import pytest

from events.model import (
    Compacted,
    LlmRequested,
    MessageReceived,
    MessageSkipped,
    Recorded,
    TransportStatus,
)
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

    def __init__(self, path: Path, clock: FakeClock | None = None) -> None:
        super().__init__(path, clock=clock or FakeClock())
        self.path = path
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


def test_a_compaction_is_absorbed_without_reading_the_log_again(log):
    log.append(msg(1), msg(2, BOB), msg(3))
    runner = Runner.start(log)
    runner.snapshot(log)
    marker = log.compact("forget", Selection(chats=frozenset({ALICE})))
    assert marker is not None
    later = log.append(msg(4, BOB))
    log.reads.clear()
    assert runner.catch_up() == [marker, *later]
    assert log.reads == [3]  # the tail only: no refold
    assert queue.chats_with_work(runner.states.queue) == [BOB]
    assert [i.message.msg_id for i in queue.pending(runner.states.queue, BOB)] == ["m2", "m4"]
    assert_current(runner, log)
    # The snapshot folded before held Alice's texts: the log dropped it. The one the
    # runner saves after absorbing the marker (as the daemon and ``compact`` do) serves.
    assert log.load_snapshot(SNAPSHOT_NAME, SNAPSHOT_VERSION) is None
    runner.snapshot(log)
    log.reads.clear()
    restarted = Runner.start(log)
    assert log.reads == [runner.seq]
    assert restarted.states == runner.states


def test_start_after_a_rotation_folds_the_tail_and_never_rereads_the_log(tmp_path):
    clock = FakeClock()
    log = CountingLog(tmp_path / "rotated.db", clock=clock)
    log.append(*[msg(n) for n in range(50)], TransportStatus(state="connected", me_lid="7@lid"))
    clock.advance(86400)
    log.append(msg(99, BOB))
    running = Runner.start(log)
    running.snapshot(log)
    cutoff = clock.now - 3600
    kept = next(r.seq for r in log.read() if isinstance(r.event, TransportStatus))
    marker = log.compact("rotation", Selection(older_than=cutoff, keep=frozenset({kept})))
    assert marker is not None
    assert isinstance(marker.event, Compacted)
    assert marker.event.removed == 50
    running.catch_up()  # the daemon absorbs its rotation and saves what it holds then
    running.snapshot(log)
    log.reads.clear()
    runner = Runner.start(log)
    assert 0 not in log.reads  # no refold
    assert [i.message.msg_id for i in queue.pending(runner.states.queue, ALICE)] == []
    assert [i.message.msg_id for i in queue.pending(runner.states.queue, BOB)] == ["m99"]
    assert runner.states.identity.me_lid == "7@lid"  # its event was kept
    assert not runner.stale
    log.close()


def _legacy_forget(log: CountingLog, chat: str) -> None:
    """What an older version did: delete a chat's events, record a marker that lists nothing."""
    with sqlite3.connect(log.path) as db:
        removed = db.execute("DELETE FROM events WHERE chat = ?", (chat,)).rowcount
        last = db.execute("SELECT max(seq) FROM events").fetchone()[0]
    log.append(Compacted(reason="forget", before=last + 1, removed=removed))


def test_a_marker_that_does_not_say_what_went_is_refolded(log):
    log.append(msg(1), msg(2))
    runner = Runner.start(log)
    first = log.append(msg(3, BOB))
    _legacy_forget(log, ALICE)
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
    log.reads.clear()
    new = runner.catch_up()
    assert log.reads[-1] == 0  # refolded
    assert [r.seq for r in new] == [first[0].seq, first[0].seq + 1, last[0].seq]
    assert_current(runner, log)


def test_without_refolding_a_runner_goes_on_stale_and_saves_no_snapshot(log):
    log.append(msg(1), msg(2, BOB))
    runner = Runner.start(log)
    runner.snapshot(log)
    _legacy_forget(log, ALICE)
    log.append(msg(3, BOB))
    runner.catch_up(refold=False)
    assert runner.stale
    # The old state goes on: it still holds the removed message, and the new one.
    assert [i.message.msg_id for i in queue.pending(runner.states.queue, ALICE)] == ["m1"]
    assert [i.message.msg_id for i in queue.pending(runner.states.queue, BOB)] == ["m2", "m3"]
    runner.snapshot(log)
    saved = log.load_snapshot(SNAPSHOT_NAME, SNAPSHOT_VERSION)
    assert saved is not None
    assert saved[0] == 2  # still the one from before the marker: a start refolds
    fresh = Runner.refolded(log)
    assert not fresh.stale
    assert_current(fresh, log)


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
    runner.snapshot(log)  # the one before the marker went with it
    from_snapshot = Runner.start(log)
    for states in (after_full, runner.states, from_snapshot.states):
        for name in ("queue", "outbox", "sessions", "own_sends", "aliases", "budget", "takeover"):
            assert getattr(states, name) == getattr(before, name), name
        assert states.connection.state == "connected"
        assert states.stats.compacted == 3
    assert runner.states == from_snapshot.states
    # The stats tallies are what was recorded; a fold of what is left counts less.
    assert runner.states.stats.by_type["TransportStatus"] == 4
    assert after_full.stats.by_type["TransportStatus"] == 1
