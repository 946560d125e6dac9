"""Owner-only files whatever the umask: the one helper every creator uses."""

from __future__ import annotations

import configparser
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from events.backends import open_log
from events.model import TransportStatus
from events.owner_only import (
    open_private,
    private_dir,
    private_file,
    restrict_umask,
    tighten,
    write_private,
)
from pipeline.daemon import DaemonLock
from pipeline.tools.replay._files import replace_private, reserve
from pipeline.tools.replay._files import write_private as write_experiment
from tests.e2e.harness import loose_modes


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_directories_are_made_0700_down_from_the_first_missing_one(
    tmp_path: Path, loose_umask: int
) -> None:
    tmp_path.chmod(0o755)
    private_dir(tmp_path / "a" / "b" / "c")

    assert loose_modes(tmp_path / "a") == []
    assert mode(tmp_path) == 0o755  # not ours: an existing parent is left alone


def test_an_existing_directory_is_tightened_unless_it_may_be_the_users(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "store", tmp_path / "home"
    for directory in (ours, theirs):
        directory.mkdir(mode=0o755)
        directory.chmod(0o755)

    private_dir(ours)
    private_dir(theirs, tighten=False)

    assert (mode(ours), mode(theirs)) == (0o700, 0o755)


def test_a_file_in_the_way_of_a_directory_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "store").write_bytes(b"")
    with pytest.raises(FileExistsError):
        private_dir(tmp_path / "store")
    assert mode(tmp_path / "store") != 0o700


def test_files_are_created_0600_and_old_ones_tightened(tmp_path: Path, loose_umask: int) -> None:
    old = tmp_path / "old.log"
    old.write_bytes(b"kept")
    old.chmod(0o644)

    private_file(tmp_path / "new.db")
    os.close(open_private(old, os.O_WRONLY | os.O_APPEND))
    write_private(tmp_path / "whole.json", b"{}")
    write_private(tmp_path / "once.json", b"{}", exclusive=True)

    assert loose_modes(tmp_path)[1:] == []  # tmp_path itself is pytest's
    assert old.read_bytes() == b"kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "new.db",
        "old.log",
        "once.json",
        "whole.json",
    ]


def test_exclusive_writes_never_replace_and_plain_writes_replace_whole(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    write_private(path, b"first", exclusive=True)
    with pytest.raises(FileExistsError):
        write_private(path, b"second", exclusive=True)
    write_private(path, b"third")

    assert path.read_bytes() == b"third"
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]  # no temporary file left


def test_tighten_skips_what_does_not_exist(tmp_path: Path) -> None:
    (tmp_path / "a-wal").write_bytes(b"")
    (tmp_path / "a-wal").chmod(0o644)
    tighten(tmp_path / "a-wal", tmp_path / "a-shm")
    assert mode(tmp_path / "a-wal") == 0o600


def test_sqlite_gives_its_wal_and_shm_the_mode_of_a_precreated_database(
    tmp_path: Path, loose_umask: int
) -> None:
    """Why creating the database file first is enough for its companions."""
    db = private_file(tmp_path / "x.db")
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (x)")
        conn.execute("INSERT INTO t VALUES (1)")
        conn.commit()
        companions = sorted(p.name for p in tmp_path.iterdir())
        assert companions == ["x.db", "x.db-shm", "x.db-wal"]
        assert loose_modes(tmp_path)[1:] == []
    finally:
        conn.close()


def test_restrict_umask_makes_library_files_private(tmp_path: Path, loose_umask: int) -> None:
    restrict_umask()
    (tmp_path / "lib.png").write_bytes(b"")
    (tmp_path / "libdir").mkdir()
    assert (mode(tmp_path / "lib.png"), mode(tmp_path / "libdir")) == (0o600, 0o700)


# -- every creator uses it ------------------------------------------------------


def test_the_store_log_and_lock_are_private(tmp_path: Path, loose_umask: int) -> None:
    store = tmp_path / "var" / "store"
    lock = DaemonLock(store)
    lock.acquire()
    try:
        with open_log(store) as log:
            log.append(TransportStatus(state="connected", detail="test"))
            assert {p.name for p in store.iterdir()} >= {"events.db-wal", "events.db-shm"}
            assert loose_modes(tmp_path / "var") == []
    finally:
        lock.release()
    assert loose_modes(tmp_path / "var") == []


def test_an_old_log_and_lock_are_tightened_when_opened(tmp_path: Path) -> None:
    with open_log(tmp_path / "store") as log:
        log.append(TransportStatus(state="connected", detail="test"))
    for path in [tmp_path / "store", *(tmp_path / "store").iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    (tmp_path / "store" / "daemon.lock").write_bytes(b"")
    (tmp_path / "store" / "daemon.lock").chmod(0o644)

    lock = DaemonLock(tmp_path / "store")
    lock.acquire()
    lock.release()
    open_log(tmp_path / "store").close()

    assert loose_modes(tmp_path / "store") == []


def test_replay_files_are_private(tmp_path: Path, loose_umask: int) -> None:
    saved = reserve(tmp_path / "store" / "replays", "491701111111")
    again = reserve(tmp_path / "store" / "replays", "491701111111")
    write_experiment(saved, b"{}")
    replace_private(tmp_path / "store" / "replays" / "cache" / "k.json", b"{}")

    assert saved != again
    assert len(list((tmp_path / "store").rglob("*.json"))) == 3
    assert loose_modes(tmp_path / "store") == []


def test_the_systemd_unit_sets_a_private_umask() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(Path(__file__).resolve().parent.parent / "deploy" / "wabot.service")
    assert unit["Service"]["UMask"] == "0077"


def test_an_existing_file_is_never_opened_only_tightened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing any descriptor of a SQLite file drops this process's locks on it."""
    db = tmp_path / "events.db"
    db.write_bytes(b"")
    db.chmod(0o644)
    opened: list[str] = []
    real_open = os.open

    def watching_open(path: Any, *args: Any, **kwargs: Any) -> int:
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", watching_open)
    private_file(db)

    assert opened == []
    assert db.stat().st_mode & 0o777 == 0o600
