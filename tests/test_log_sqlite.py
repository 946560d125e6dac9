"""The SQLite log bound to the backend-independent contract, plus its own specifics."""

import sqlite3
from pathlib import Path

import pytest

from events import MessageReceived, TransportStatus
from events.log import LogError, SQLiteLog, open_log
from events.testing import FakeClock, LogContract, message


class TestSQLiteLog(LogContract):
    factory = "events.log:SQLiteLog"


class TestSQLiteLogFullSync(LogContract):
    factory = "tests.test_log_sqlite:full_sync_log"


def full_sync_log(path: Path, **kw: object) -> SQLiteLog:
    kw["synchronous"] = "FULL"
    return SQLiteLog(path, **kw)  # type: ignore[arg-type]


def test_schema_is_readable_without_wabot(tmp_path: Path) -> None:
    log = open_log(tmp_path, clock=FakeClock(1_764_070_000.25))
    log.append(MessageReceived(chat="4917@s.whatsapp.net", msg_id="M1", sender="x", text="hi"))
    db = sqlite3.connect(tmp_path / "events.db")
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    row = db.execute(
        "SELECT seq, ts, type, chat, json_extract(body, '$.text') FROM events"
    ).fetchone()
    assert row == (1, 1_764_070_000_250_000, "MessageReceived", "4917@s.whatsapp.net", "hi")
    assert db.execute("SELECT at FROM timeline").fetchone() == ("2025-11-25T11:26:40.250Z",)


def test_synchronous_setting_is_applied(tmp_path: Path) -> None:
    log = SQLiteLog(tmp_path / "e.db", synchronous="FULL")
    assert log._writer.execute("PRAGMA synchronous").fetchone() == (2,)
    with pytest.raises(ValueError, match="NORMAL or FULL"):
        SQLiteLog(tmp_path / "f.db", synchronous="OFF")  # type: ignore[arg-type]


def test_snapshots_round_trip_and_are_versioned(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    assert log.load_snapshot("projections", 1) is None
    log.save_snapshot("projections", 1, 42, b"state")
    log.save_snapshot("projections", 1, 43, b"newer")
    assert log.load_snapshot("projections", 1) == (43, b"newer")
    assert log.load_snapshot("projections", 2) is None


def test_read_filters_by_chat_and_limit(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.append(*(message(i, chat=f"{i % 2 + 1}@s.whatsapp.net") for i in range(5000)))
    assert len(list(log.read(chat="1@s.whatsapp.net"))) == 2500
    assert [r.seq for r in log.read(after=10, limit=3)] == [11, 12, 13]
    assert len(list(log.read(limit=4500))) == 4500


def test_reopen_continues_numbering(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.append(message(1), message(2))
    log.compact("forget", lambda r: True)
    log.close()
    again = open_log(tmp_path)
    assert again.last_seq() == 3
    assert again.append(TransportStatus(state="connected"))[0].seq == 4


def test_unusable_store_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(LogError, match="cannot create the store directory"):
        open_log(blocker / "store")


def test_subscribers_hear_every_commit(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    heard: list[int] = []
    stop = log.subscribe(heard.append)
    log.append(message(1))
    log.append(message(2), message(3))
    stop()
    log.append(message(4))
    assert heard == [1, 3]
