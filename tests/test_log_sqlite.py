"""The SQLite logs bound to the backend-independent contract, plus their own specifics."""

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from events import MessageReceived, TransportStatus
from events.backends import open_log, open_reader
from events.protocol import Guard, LogError, LogReader, LogWriter, NoLog, Selection
from events.sqlite import SQLiteLog, SQLiteReader
from events.testing import DurableLogContract, FakeClock, ReaderContract, message


class SQLiteDurable(DurableLogContract):
    """The durable contract plus SQLite's own check of the file after kill -9."""

    def check_integrity(self, path: Path) -> None:
        with closing(sqlite3.connect(path)) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    @contextlib.contextmanager
    def markers_refused(self, path: Path) -> Iterator[None]:
        """SQLITE_FULL's own message, raised by a trigger on the marker's insert."""
        with closing(sqlite3.connect(path, isolation_level=None)) as db:
            db.execute(
                "CREATE TRIGGER disk_full BEFORE INSERT ON events WHEN NEW.type = 'Compacted'"
                " BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
            )
            try:
                yield
            finally:
                db.execute("DROP TRIGGER disk_full")


class TestSQLiteLog(SQLiteDurable):
    factory = "events.sqlite:SQLiteLog"


class TestSQLiteLogFullSync(SQLiteDurable):
    factory = "tests.test_log_sqlite:full_sync_log"


class TestSQLiteReader(ReaderContract):
    """The read-only log reads what the read-write one wrote, from its own connection."""

    factory = "events.sqlite:SQLiteLog"

    def reader(self, log: LogWriter, path: Path) -> LogReader:
        return SQLiteReader(path)


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


def test_reopen_continues_numbering(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.append(message(1), message(2))
    log.compact("forget", Selection())
    log.close()
    again = open_log(tmp_path)
    assert again.last_seq() == 3
    assert again.append(TransportStatus(state="connected"))[0].seq == 4


def test_unusable_store_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(LogError, match="cannot create the store directory"):
        open_log(blocker / "store")


def test_the_read_only_log_creates_nothing_and_cannot_write(tmp_path: Path) -> None:
    with pytest.raises(NoLog, match="no event log here"):
        open_reader(tmp_path / "store")
    assert not (tmp_path / "store").exists()
    open_log(tmp_path).append(message(1))
    with open_reader(tmp_path) as reader:
        assert not hasattr(reader, "append")
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader._reader.execute("DELETE FROM events")  # type: ignore[attr-defined]


def _files_holding(folder: Path, text: bytes) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file() and text in p.read_bytes())


def test_compaction_leaves_no_byte_of_what_it_removed_in_the_files(tmp_path: Path) -> None:
    log = SQLiteLog(tmp_path / "events.db")
    gone, kept = "1@s.whatsapp.net", "2@s.whatsapp.net"
    for i in range(50):  # interleaved: the pages that keep Bob's rows held Alice's
        log.append(message(i, chat=gone, tag="zebra-quartz"), message(i, chat=kept, tag="walrus"))
    log._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # in the file, not just the WAL
    log.compact("forget", Selection(chats=frozenset({gone})))
    log.close()
    assert _files_holding(tmp_path, b"zebra-quartz") == []
    assert _files_holding(tmp_path, b"walrus") == ["events.db"]


def _snapshots_holding(db: Path, text: bytes) -> list[str]:
    with closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)) as conn:
        return [
            name
            for name, state in conn.execute("SELECT name, state FROM snapshots")
            if text in state
        ]


@pytest.mark.parametrize("by", ["another process", "the log's owner"])
def test_a_rotation_leaves_no_byte_of_what_it_removed_in_the_snapshots_or_the_wal(
    tmp_path: Path, by: str
) -> None:
    """Beside a running bot (its connections keep the WAL when the tool's close): the
    snapshot it folded before the rotation held the expired texts, and so did the
    WAL's frames, after ``compact`` exited and for as long as the bot ran."""
    db = tmp_path / "events.db"
    clock = FakeClock()
    bot = SQLiteLog(db, clock=clock)
    for i in range(50):
        bot.append(message(i, tag="zebra-quartz"), message(i, chat="2@s.whatsapp.net", tag="w"))
    bot.save_snapshot("projections", 3, bot.last_seq(), b"folded: zebra-quartz " * 2000)
    clock.advance(100)
    bot.append(message(99, tag="walrus"))
    assert _files_holding(tmp_path, b"zebra-quartz") != []
    rotation = Selection(older_than=clock.now - 50)
    if by == "another process":
        with SQLiteLog(db) as tool:
            marker = tool.compact("rotation", rotation)
    else:
        with closing(sqlite3.connect(db)) as reader:  # the WAL outlives the log's close
            reader.execute("SELECT count(*) FROM events").fetchall()
            marker = bot.compact("rotation", rotation)
    assert marker is not None
    assert _files_holding(tmp_path, b"zebra-quartz") == []
    assert _snapshots_holding(db, b"zebra-quartz") == []
    assert bot.load_snapshot("projections", 3) is None
    assert _files_holding(tmp_path, b"walrus") != []
    bot.close()
    assert _files_holding(tmp_path, b"zebra-quartz") == []


def test_compaction_zeroes_what_it_removed_where_sqlite_would_not_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Debian builds SQLite with ``secure_delete`` on; other builds (macOS, a
    bundled one) leave it off, and a rotation's deleted texts stayed readable in
    the free pages of a connection that did not ask for it."""
    connect = sqlite3.connect

    def off_by_default(*args: Any, **kw: Any) -> sqlite3.Connection:
        conn: sqlite3.Connection = connect(*args, **kw)
        conn.execute("PRAGMA secure_delete=OFF")
        return conn

    monkeypatch.setattr(sqlite3, "connect", off_by_default)
    test_compaction_leaves_no_byte_of_what_it_removed_in_the_files(tmp_path)


def test_purge_waits_for_a_bots_write_in_progress(tmp_path: Path) -> None:
    """forget beside a running bot: a write of the bot's under way made the purge fail
    at once ("database is locked"), after the chat's events had gone but before the
    file was rewritten. It waits its turn now, as any write does."""
    path = tmp_path / "events.db"
    log = SQLiteLog(path)
    log.append(message(1))
    bot = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    bot.execute("BEGIN IMMEDIATE")  # the bot's append, committing
    held = threading.Event()

    def commit_soon() -> None:
        held.wait(5)
        time.sleep(0.3)  # the purge has started waiting by then
        bot.execute("COMMIT")

    committer = threading.Thread(target=commit_soon)
    committer.start()
    held.set()
    try:
        log.purge()
    finally:
        committer.join()
        bot.close()
        log.close()
    with closing(sqlite3.connect(path)) as raw:
        assert raw.execute("SELECT count(*) FROM snapshots").fetchone() == (0,)


def test_purge_clears_what_an_older_version_left_in_free_space(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    SQLiteLog(path).close()
    with closing(sqlite3.connect(path)) as raw:  # deleted without secure_delete
        raw.execute("PRAGMA secure_delete=OFF")
        raw.execute("INSERT INTO snapshots VALUES ('p', 1, 1, ?)", (b"zebra-quartz" * 500,))
        raw.commit()
        raw.execute("DELETE FROM snapshots")
        raw.commit()
    assert _files_holding(tmp_path, b"zebra-quartz") == ["events.db"]
    log = SQLiteLog(path)
    log.purge()
    log.close()
    assert _files_holding(tmp_path, b"zebra-quartz") == []


def test_a_guarded_append_reads_the_compactions_only_after_one(tmp_path: Path) -> None:
    """Its guard costs one small query while nothing was compacted since its decision;
    the markers and the compactions under way are read (and decoded) only after one."""
    one, two = "1@s.whatsapp.net", "2@s.whatsapp.net"
    sent: list[str] = []
    with SQLiteLog(tmp_path / "events.db") as log:
        log._writer.set_trace_callback(sent.append)
        seen = log.append(message(0, chat=two), message(1, chat=one))[-1].seq
        del sent[:]
        log.append(message(9, chat=two))
        plain = len(sent)  # BEGIN, INSERT, COMMIT
        del sent[:]
        log.append(message(2, chat=one), guard=Guard(frozenset({one}), seen))
        assert len(sent) == plain + 1
        assert log.compact("forget", Selection(chats=frozenset({two}))) is not None
        del sent[:]
        log.append(message(3, chat=one), guard=Guard(frozenset({one}), seen))
        assert len(sent) > plain + 1  # another chat's marker since: decided exactly, recorded
        assert [r.event for r in log.read(chats=[one])] == [message(n, one) for n in (1, 2, 3)]
