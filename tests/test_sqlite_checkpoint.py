"""The SQLite log's WAL stays small while appends never pause, and shrinks after a bulk grew it."""

import sqlite3
from contextlib import closing
from pathlib import Path

from events.sqlite import SQLiteLog, SQLiteReader
from events.sqlite_checkpoint import LIMIT
from events.testing import message


def _wal(db: Path) -> int:
    return db.with_name(db.name + "-wal").stat().st_size


def test_single_commits_flat_out_keep_the_wal_small(tmp_path: Path) -> None:
    """Without the WAL starting over, 2,000 single commits grow it to about 37 MB."""
    db = tmp_path / "events.db"
    log = SQLiteLog(db, synchronous="FULL")
    for n in range(2000):
        log.append(message(n))
    assert _wal(db) <= LIMIT
    with SQLiteReader(db) as reader:  # all there, in order, for another connection
        assert [r.event for r in reader.read()] == [message(n) for n in range(2000)]
    log.close()


def test_a_wal_that_a_bulk_grew_is_emptied_once_copied_back(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    SQLiteLog(db).close()
    with closing(sqlite3.connect(db, isolation_level=None)) as other:  # a compaction, say
        other.execute("PRAGMA wal_autocheckpoint=0")
        other.execute("BEGIN")
        for n in range(60_000):
            other.execute(
                "INSERT INTO events (ts, type, chat, body) VALUES (?, 'X', 'c', ?)", (n, "x" * 300)
            )
        other.execute("COMMIT")
        assert _wal(db) > LIMIT
        log = SQLiteLog(db)
        log._checkpointer._checkpoint()  # what a commit or a compaction asks the thread for
        assert _wal(db) == 0
        log.append(message(1))
        assert 0 < _wal(db) <= LIMIT
        assert log.last_seq() == 60_001
        log.close()
