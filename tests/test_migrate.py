"""``python -m pipeline migrate``: a store into PostgreSQL and back, seqs, keys, snapshots kept."""

from __future__ import annotations

import hashlib
import os
import socket
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from events.backends import open_reader
from events.model import Compacted, ConfigLoaded
from events.owner_only import private_dir, write_private
from events.postgres import PostgresLog, PostgresSide
from events.protocol import Keyed, LogError, Selection
from events.sqlite import SQLiteLog
from events.testing import FakeClock, message
from events.transfer import SQLiteSide, summarise
from pipeline.daemon._lease import LeaseLock
from pipeline.media import MediaStore
from pipeline.store_lock import DaemonLock
from tests.pg_support import DSN, own_schema, require_server, schema_url

require_server()

OWNER = "491700000000"


@pytest.fixture
def url() -> Iterator[str]:
    with own_schema() as schema:
        yield schema_url(schema)


def _history(store: Path) -> None:
    """A store's log with keys, a compacted tail, a snapshot and the owner's config."""
    with SQLiteLog(store / "events.db", clock=FakeClock(1_764_070_000.123456)) as log:
        log.append(ConfigLoaded(hash="h", config={"whatsapp": {"phone_number": OWNER}}, path="a"))
        log.append(*(Keyed(message(n), f"chat/M{n}") for n in range(5)), message(5))
        log.append(message(6), message(7))
        log.compact("forget", Selection(seqs=frozenset({8, 9})))  # the newest two go
        log.save_snapshot("projections", 2**32 - 1, 10, b"\x00state\xff")


def _migrate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WABOT_STORE", "WABOT_LOG_URL")}
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "migrate", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _rows(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT seq, ts, type, chat, key, body FROM events ORDER BY seq"
        ).fetchall()


def test_a_store_goes_to_postgresql_and_back_exactly(tmp_path: Path, url: str) -> None:
    source = tmp_path / "store"
    source.mkdir()
    _history(source)

    there = _migrate("--to", url, "--store", str(source), cwd=tmp_path)
    assert there.returncode == 0, there.stderr
    want = summarise(SQLiteSide(source))
    assert there.stdout.startswith(
        f"copied {want.events} events (seqs handed out: 10) and 1 snapshots"
    )
    assert want.sha256[:16] in there.stdout
    assert summarise(PostgresSide(url, name=OWNER)) == want

    with open_reader(tmp_path, url=url, name=OWNER) as log:
        assert [r.seq for r in log.read()] == [1, 2, 3, 4, 5, 6, 7, 10]
        assert log.load_snapshot("projections", 2**32 - 1) == (10, b"\x00state\xff")
    with PostgresLog(url, name=OWNER) as log:  # the counter came along: 8 and 9 stay unused
        assert log.append(message(11))[0].seq == 11
        assert log.append(Keyed(message(0), "chat/M0"))[0].seq == 2  # keys came along too

    back = tmp_path / "backup"
    done = _migrate("--from", url, "--store", str(back), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    copied = _rows(back / "events.db")
    assert copied[:-1] == _rows(source / "events.db")
    assert [r[0] for r in copied] == [1, 2, 3, 4, 5, 6, 7, 10, 11]
    with SQLiteLog(back / "events.db") as log:
        assert log.append(message(12))[0].seq == 12
        assert log.load_snapshot("projections", 2**32 - 1) == (10, b"\x00state\xff")


def test_a_target_that_holds_events_is_refused_in_one_line(tmp_path: Path, url: str) -> None:
    store = tmp_path / "store"
    store.mkdir()
    _history(store)
    assert _migrate("--to", url, "--store", str(store), cwd=tmp_path).returncode == 0
    with PostgresLog(url, name=OWNER) as log:  # no longer the same log as the store's
        log.append(message(11))

    again = _migrate("--to", url, "--store", str(store), cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr == (
        f"wabot: postgresql://postgres@127.0.0.1:5432/test (log {OWNER}) already holds events;"
        " refusing to overwrite it\n"
    )
    onto = _migrate("--from", url, "--store", str(store), cwd=tmp_path)
    assert onto.returncode == 2
    assert (
        onto.stderr
        == f"wabot: {store / 'events.db'} already holds events; refusing to overwrite it\n"
    )


def _media(directory: Path, *contents: bytes) -> list[str]:
    names = []
    for content in contents:
        name = hashlib.sha256(content).hexdigest()
        private_dir(directory)
        write_private(directory / name, content)
        names.append(name)
    return names


def _private(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_attachments_move_with_the_log_so_a_forget_there_finds_them(
    tmp_path: Path, url: str
) -> None:
    """A log on PostgreSQL sweeps ``STORE/media/<number>/``, one in SQLite ``STORE/media/``:
    a file left in the other place would outlive its chat's ``forget``."""
    store = tmp_path / "store"
    store.mkdir()
    _history(store)
    names = _media(store / "media", b"alice's photo", b"bob's voice")

    there = _migrate("--to", url, "--store", str(store), cwd=tmp_path)
    assert there.returncode == 0, there.stderr
    assert there.stdout.rstrip().endswith(f"; moved 2 media files to {store}/media/{OWNER}/")
    assert sorted(p.name for p in (store / "media").iterdir()) == [OWNER]
    moved = store / "media" / OWNER
    assert sorted(p.name for p in moved.iterdir()) == sorted(names)
    assert _private(moved) == 0o700
    assert {_private(moved / n) for n in names} == {0o600}
    assert (moved / names[0]).read_bytes() == b"alice's photo"
    # The log's own sweep (forget, compact) now sees them: nothing refers to them.
    assert MediaStore.of(store, OWNER).sweep(set(), doomed=names) == 2

    _media(moved, b"carol's file")  # and back: the SQLite log sweeps STORE/media/
    back = _migrate("--from", url, "--store", str(tmp_path / "back"), cwd=tmp_path)
    assert back.returncode == 0, back.stderr  # another store: nothing of this one moves
    assert "moved" not in back.stdout
    (store / "events.db").unlink()
    home = _migrate("--from", url, "--store", str(store), cwd=tmp_path)
    assert home.returncode == 0, home.stderr
    assert home.stdout.rstrip().endswith(f"; moved 1 media file to {store}/media/")
    assert _private(store / "media" / hashlib.sha256(b"carol's file").hexdigest()) == 0o600
    assert not list(moved.iterdir())


def test_a_run_interrupted_after_the_copy_finishes_moving_the_files(
    tmp_path: Path, url: str
) -> None:
    store = tmp_path / "store"
    store.mkdir()
    _history(store)
    assert _migrate("--to", url, "--store", str(store), cwd=tmp_path).returncode == 0
    late = _media(store / "media", b"left behind")  # as if the move had been cut short

    again = _migrate("--to", url, "--store", str(store), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "nothing to copy" in again.stdout
    assert again.stdout.rstrip().endswith(f"; moved 1 media file to {store}/media/{OWNER}/")
    assert (store / "media" / OWNER / late[0]).read_bytes() == b"left behind"
    with PostgresLog(url, name=OWNER) as log:
        assert log.last_seq() == 10  # not copied twice
    third = _migrate("--to", url, "--store", str(store), cwd=tmp_path)
    assert third.returncode == 0, third.stderr
    assert "moved" not in third.stdout


def test_a_store_whose_daemon_runs_is_refused_in_one_line(tmp_path: Path, url: str) -> None:
    """What the daemon appends after the copy began would never reach the target,
    though both sides' counts and sha256 matched; ``run`` refuses a held store too."""
    store = tmp_path / "store"
    store.mkdir()
    _history(store)
    daemon = DaemonLock(store)  # as the running daemon holds it
    daemon.acquire()
    try:
        for args in (("--to", url), ("--from", url, "--number", OWNER)):
            refused = _migrate(*args, "--store", str(store), cwd=tmp_path)
            assert refused.returncode == 2, refused.stdout
            assert refused.stderr == (
                f"wabot: {store}: another wabot (pid {os.getpid()}) is running on this store;"
                " stop it before migrate\n"
            )
        assert PostgresSide(url, name=OWNER).is_empty()
    finally:
        daemon.release()
    done = _migrate("--to", url, "--store", str(store), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    starting = DaemonLock(store)  # and the lock is free again for the daemon
    starting.acquire()
    starting.release()


def test_a_number_whose_daemon_runs_on_postgresql_is_refused_in_one_line(
    tmp_path: Path, url: str
) -> None:
    """That daemon may run on another machine, where the store's lock cannot see it:
    its lease says so. Copied from beside it, its later appends would stay behind."""
    with PostgresLog(url, name=OWNER) as log:  # the daemon's log so far
        log.append(message(1), message(2))
    full, empty = tmp_path / "full", tmp_path / "empty"
    full.mkdir()
    empty.mkdir()
    _history(full)
    daemon = LeaseLock(url, OWNER, settle=0)  # as the daemon on the server holds it
    daemon.acquire()
    try:
        for args in (("--to", url, "--store", str(full)), ("--from", url, "--store", str(empty))):
            refused = _migrate(*args, "--number", OWNER, cwd=tmp_path)
            assert refused.returncode == 2, refused.stdout
            assert refused.stderr.count("\n") == 1, refused.stderr
            assert f"a daemon runs on number {OWNER}'s log (" in refused.stderr
            holder = f"pid {os.getpid()} on {socket.gethostname()}"
            assert refused.stderr.endswith(f"; {holder}); stop it before migrate\n")
        assert not (empty / "events.db").exists()
    finally:
        daemon.release()
    done = _migrate("--from", url, "--store", str(empty), "--number", OWNER, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [row[0] for row in _rows(empty / "events.db")] == [1, 2]
    starting = LeaseLock(url, OWNER, settle=0)  # and the lease is free again for the daemon
    starting.acquire()
    starting.release()


def test_the_number_comes_from_the_store_or_from_number(tmp_path: Path, url: str) -> None:
    store = tmp_path / "store"
    store.mkdir()
    with SQLiteLog(store / "events.db") as log:  # no config in it: which number is it?
        log.append(message(1))
    unnamed = _migrate("--to", url, "--store", str(store), cwd=tmp_path)
    assert unnamed.returncode == 2
    assert "has no config to tell its number: give --number" in unnamed.stderr
    named = _migrate(
        "--to", url, "--store", str(store), "--number", "+49 170 0000099", cwd=tmp_path
    )
    assert named.returncode == 0, named.stderr
    with open_reader(tmp_path, url=url, name="491700000099") as log:
        assert log.last_seq() == 1


def test_a_missing_store_and_a_bad_url_are_one_line(tmp_path: Path) -> None:
    missing = _migrate("--to", DSN, "--store", str(tmp_path / "none"), cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1
    assert "no event log here" in missing.stderr
    bad = _migrate("--to", "mysql://x", "--store", str(tmp_path), cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr == "wabot: --to: 'mysql://x' is not a postgresql:// URL\n"


def test_a_compaction_a_failure_left_is_finished_before_the_copy(tmp_path: Path, url: str) -> None:
    """The copy carries events and snapshots, not a compaction under way: its marker is
    recorded first, or neither side would ever say what went."""
    source = tmp_path / "store"
    source.mkdir()
    _history(source)
    db = source / "events.db"
    with SQLiteLog(db) as log:
        log.append(*(message(n, chat="2@s.whatsapp.net") for n in range(3)))
        with sqlite3.connect(db, isolation_level=None) as trigger:
            trigger.execute(
                "CREATE TRIGGER disk_full BEFORE INSERT ON events WHEN NEW.type = 'Compacted'"
                " BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
            )
            with pytest.raises(LogError):
                log.compact("forget", Selection(chats=frozenset({"2@s.whatsapp.net"})))
            trigger.execute("DROP TRIGGER disk_full")

    there = _migrate("--to", url, "--store", str(source), cwd=tmp_path)
    assert there.returncode == 0, there.stderr
    with open_reader(source, url=url, name=OWNER) as copied:
        markers = [r.event for r in copied.read() if isinstance(r.event, Compacted)]
    assert [(m.reason, m.chats) for m in markers] == [
        ("forget", None),
        ("forget", ["2@s.whatsapp.net"]),
    ]
