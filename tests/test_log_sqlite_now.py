"""``SQLiteLog.append_now``: a commit on the caller's thread only when it cannot wait."""

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from events import Keyed, MessageReceived, Recorded
from events.protocol import AppendsNow, LogError
from events.sqlite import SQLiteLog

CHAT = "4917@s.whatsapp.net"


def msg(n: int) -> MessageReceived:
    return MessageReceived(chat=CHAT, msg_id=f"M{n}", sender=CHAT, text=f"t{n}")


@pytest.fixture
def log(tmp_path: Path) -> Any:
    with SQLiteLog(tmp_path / "events.db") as log:
        yield log


def test_it_commits_and_is_published_like_an_append(log: SQLiteLog) -> None:
    published: list[int] = []
    log.subscribe(published.append)
    recs = log.append_now(msg(1), Keyed(msg(2), "k2"))
    assert recs is not None
    assert [r.seq for r in recs] == [1, 2]
    assert [r.event for r in log.read()] == [msg(1), msg(2)]
    assert published == [2]
    again = log.append_now(Keyed(msg(3), "k2"))  # an existing key: the earlier event
    assert again is not None
    assert again[0].event == msg(2)
    assert isinstance(log, AppendsNow)


def test_with_the_write_lock_held_in_this_process_it_writes_nothing(log: SQLiteLog) -> None:
    with log._group.lock:
        assert log.append_now(msg(1)) is None
    assert log.last_seq() == 0


def test_with_the_write_lock_held_by_another_writer_it_writes_nothing(
    log: SQLiteLog, tmp_path: Path
) -> None:
    other = sqlite3.connect(tmp_path / "events.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    assert log.append_now(msg(1)) is None
    other.execute("ROLLBACK")
    other.close()
    assert log.append_now(msg(1)) is not None
    assert [r.event for r in log.read()] == [msg(1)]


def test_with_appends_queued_for_the_lock_it_lets_them_go_first(log: SQLiteLog) -> None:
    done: list[list[Recorded]] = []
    with log._group.lock:
        waiting = threading.Thread(target=lambda: done.append(log.append(msg(1))))
        waiting.start()
        while not log._group.waiting:
            waiting.join(0.001)
        assert log.append_now(msg(2)) is None
    waiting.join()
    assert [r.event for r in log.read()] == [msg(1)]


def test_a_full_sync_log_never_commits_on_the_callers_thread(tmp_path: Path) -> None:
    with SQLiteLog(tmp_path / "events.db", synchronous="FULL") as log:
        assert log.append_now(msg(1)) is None
        assert log.last_seq() == 0


def test_a_failed_commit_raises_and_leaves_the_log_unchanged(log: SQLiteLog) -> None:
    log._writer.execute(
        "CREATE TRIGGER no BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'full'); END"
    )
    with pytest.raises(LogError, match="full"):
        log.append_now(msg(1))
    log._writer.execute("DROP TRIGGER no")
    assert log.last_seq() == 0
    assert log.append_now(msg(1)) is not None
