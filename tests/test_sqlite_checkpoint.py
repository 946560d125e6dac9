"""The SQLite log's WAL stays small while appends never pause, and shrinks after a bulk grew it."""

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from events import sqlite_checkpoint
from events.sqlite import SQLiteLog, SQLiteReader
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


def test_a_wal_that_a_bulk_grew_is_emptied_once_copied_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_checkpoint, "LIMIT", 4 * MB)  # a smaller bulk will do
    db = tmp_path / "events.db"
    SQLiteLog(db).close()
    with closing(sqlite3.connect(db, isolation_level=None)) as other:  # a compaction, say
        other.execute("PRAGMA wal_autocheckpoint=0")
        other.execute("BEGIN")
        for n in range(20_000):
            other.execute(
                "INSERT INTO events (ts, type, chat, body) VALUES (?, 'X', 'c', ?)", (n, "x" * 300)
            )
        other.execute("COMMIT")
        assert _wal(db) > 4 * MB
        log = SQLiteLog(db)
        log._checkpointer._checkpoint()  # what a commit or a compaction asks the thread for
        assert _wal(db) == 0
        log.append(message(1))
        assert 0 < _wal(db) <= 4 * MB
        assert log.last_seq() == 20_001
        log.close()
