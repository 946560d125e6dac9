"""The SQLite log's WAL stays small while appends never pause, and shrinks after a bulk grew it."""

import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from events import Compacted, compaction
from events.protocol import Chunk, Selection
from events.sqlite import SQLiteLog, SQLiteReader, _checkpoint, _compact
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


# Another process appending an event every half millisecond, one a transaction, as a busy daemon
# beside ``python -m pipeline compact`` does; it never checkpoints (the compaction must).
_APPENDER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
db.execute("PRAGMA wal_autocheckpoint=0")
print("ready", flush=True)
n = 0
while True:
    db.execute("INSERT INTO events (ts, type, chat, body) VALUES (?, 'X', 'other', '{}')", (n,))
    n += 1
    time.sleep(0.0005)
"""


def test_a_compaction_beside_another_writer_starts_the_wal_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Appends land while the compaction copies its pages back, so a WAL
    left to restart by itself never does: it grew by every page compacted
    (to 1.7 GB for a million events). Here it starts over at each checkpoint."""
    monkeypatch.setattr(_compact, "_CHECKPOINT_ROWS", 2_000)
    monkeypatch.setattr(compaction, "_MOST", 1_000)  # chunks of 1,000 rows, 30 of them
    db = tmp_path / "events.db"
    log = SQLiteLog(db)
    for start in range(0, 30_000, 1_000):
        log.append(*(message(n) for n in range(start, start + 1_000)))
    log.close()  # the last connection to close copies the WAL back and removes it
    log = SQLiteLog(db)
    sizes: list[int] = []
    with subprocess.Popen(
        [sys.executable, "-c", _APPENDER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    ) as appender:
        assert appender.stdout is not None
        assert appender.stdout.readline() == b"ready\n"
        seen = sqlite3.connect(db, isolation_level=None)
        last = [0]

        def chunk(_: Chunk) -> None:
            sizes.append(_wal(db))
            # An append lands between every two chunks, however loaded the machine is.
            last[0] = _next_append(seen, last[0])

        try:
            marker = log.compact(
                "rotation", Selection(chats=frozenset({message(0).chat})), progress=chunk
            )
        finally:
            appender.kill()
            seen.close()
    assert marker is not None
    assert isinstance(marker.event, Compacted)
    assert marker.event.removed == 30_000
    appended = log.last_seq() - 30_001
    assert appended > 10, appended  # the appends went on throughout
    # Started over at each checkpoint, the WAL peaks at about 1.7 MB (two chunks and the
    # appends); grown past its end, it reached 11 to 16 MB. A restart that cannot get
    # through at once (a reader of an old snapshot) leaves the next one to do it.
    assert max(sizes) < 4 * MB, [size // 1024 for size in sizes]
    log.close()


_APPENDED = "SELECT coalesce(max(seq), 0) FROM events WHERE type = 'X'"


def _next_append(conn: sqlite3.Connection, after: int) -> int:
    """The seq of the appender's next event after ``after`` (waited for: another process)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        (top,) = conn.execute(
            "SELECT coalesce(max(seq), 0) FROM events WHERE type = 'X'"
        ).fetchone()
        if top > after:
            return int(top)
        time.sleep(0.0005)  # another process's commit: nothing here to await
    raise AssertionError("the appender stopped appending")


def _forget_300_with_their_marker(db: Path) -> None:
    log = SQLiteLog(db)
    log.append(*(message(n) for n in range(300)))
    marker = log.compact("forget", Selection(chats=frozenset({message(0).chat})))
    assert marker is not None
    assert isinstance(marker.event, Compacted)
    assert marker.event.removed == 300
    log.close()


def test_a_sync_the_checkpoint_does_anyway_cannot_fail_the_compaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(_compact, "_CHECKPOINT_ROWS", 100)
    monkeypatch.setattr(_compact, "_datasync", broken)
    _forget_300_with_their_marker(tmp_path / "events.db")


def test_a_compaction_that_grew_the_wal_past_the_limit_cuts_it_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The log's own checkpoints leave a WAL over ``LIMIT`` to the bulk that grew
    it; a file left that size after the bulk held them off for as long as the bot
    ran (a daemon's WAL went from 169 to 235 MB after ``compact`` on 1M events)."""
    monkeypatch.setattr(_checkpoint, "LIMIT", 1 * MB)
    db = tmp_path / "events.db"
    log = SQLiteLog(db)
    for start in range(0, 20_000, 1_000):
        log.append(*(message(n) for n in range(start, start + 1_000)))
    log.close()
    log = SQLiteLog(db)
    log.append(message(0, chat="kept@s.whatsapp.net"))
    seen: list[int] = []
    log.compact(
        "rotation",
        Selection(chats=frozenset({message(0).chat})),
        progress=lambda _: seen.append(_wal(db)),
    )
    assert max(seen) > 1 * MB  # the bulk grew it
    assert _wal(db) < 64 * 1024  # cut back, then the marker's commit (10 MB if left)
    assert not log._checkpointer._bulk_elsewhere()
    assert next(r.event for r in log.read()) == message(0, chat="kept@s.whatsapp.net")
    log.close()


def test_a_failed_cut_back_does_not_cost_the_compactions_marker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """By then every selected event is gone: the marker saying so must still be recorded."""
    monkeypatch.setattr(_checkpoint, "LIMIT", 1)  # any WAL is a bulk's

    def failing(self: _compact._Chunks) -> bool:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(_compact._Chunks, "empty", failing)
    _forget_300_with_their_marker(tmp_path / "events.db")
