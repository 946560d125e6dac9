"""The SQLite log's WAL stays small while appends never pause, and shrinks after a bulk grew it."""

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from events.sqlite import SQLiteLog, SQLiteReader, _checkpoint
from events.testing import message

MB = 1024 * 1024


def _wal(db: Path) -> int:
    return db.with_name(db.name + "-wal").stat().st_size


def test_single_commits_flat_out_keep_the_wal_small(tmp_path: Path) -> None:
    """Without the WAL starting over, 2,000 single commits grow it to about 37 MB.

    It starts over about every 4 MB (synchronous=FULL); a checkpoint or two that
    cannot get through on a busy machine leave it a few times that.
    """
    db = tmp_path / "events.db"
    log = SQLiteLog(db, synchronous="FULL")
    for n in range(2000):
        log.append(message(n))
    assert _wal(db) <= 16 * MB
    with SQLiteReader(db) as reader:  # all there, in order, for another connection
        assert [r.event for r in reader.read()] == [message(n) for n in range(2000)]
    log.close()


def _bulk(db: Path, rows: int) -> None:
    """What a compaction leaves in the WAL: many pages, written by another connection."""
    with closing(sqlite3.connect(db, isolation_level=None)) as other:
        other.execute("PRAGMA wal_autocheckpoint=0")
        other.execute("BEGIN")
        for n in range(rows):
            other.execute(
                "INSERT INTO events (ts, type, chat, body) VALUES (?, 'X', 'c', ?)", (n, "x" * 300)
            )
        other.execute("COMMIT")


def test_after_a_bulk_the_wal_starts_over_once_copied_back(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    SQLiteLog(db).close()
    log = SQLiteLog(db)
    _bulk(db, 20_000)
    grown = _wal(db)
    log._checkpointer._checkpoint()  # what the thread runs when appends ask for one
    for n in range(100):  # about 2 MB of frames
        log.append(message(n))
    assert _wal(db) == grown  # written over from its top, not past its end
    assert log.last_seq() == 20_100
    log.close()


def test_appends_leave_a_bulk_to_its_writer_fifteen_times_at_most(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A WAL past ``LIMIT`` is a compaction's, which checkpoints its own pages:
    copying them from here too would slow it down."""
    monkeypatch.setattr(_checkpoint, "LIMIT", 1 * MB)
    db = tmp_path / "events.db"
    log = SQLiteLog(db)
    assert not log._checkpointer._bulk_elsewhere()
    _bulk(db, 10_000)
    assert _wal(db) > 1 * MB
    asked = [log._checkpointer._bulk_elsewhere() for _ in range(32)]
    assert asked == ([True] * 15 + [False]) * 2
    log.close()
