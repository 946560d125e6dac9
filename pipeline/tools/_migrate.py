"""``python -m pipeline migrate``: a store's SQLite log into PostgreSQL, or back (a backup).

``--to postgresql://…`` copies ``STORE/events.db`` into the log of its number
in that database; ``--from postgresql://…`` copies one number's log into
``STORE/events.db``. Every seq, key, body and snapshot is kept, the target is
written in one transaction and must be empty, and both sides must then agree
on their counts and a sha256 over every row (``events.transfer``). Not beside
the store's daemon: what it appends after the copy began would stay behind
(``--to``), or land in the copy's way (``--from``). So ``migrate`` holds the
store's daemon lock throughout, as ``run`` does: refused in one line while a
daemon holds it, and a daemon started meanwhile stops at once. The number's
log in PostgreSQL has a daemon of its own, perhaps on another machine: its
lease (``events.postgres.Lease``) is held too, so a daemon there refuses the
copy the same way, and one started meanwhile waits as a standby.

The attachments go with the log: once the copy matched, the files move from
where the source's store keeps them to where the target's does
(``STORE/media/`` for SQLite, ``STORE/media/<number>/`` for PostgreSQL;
``move_media``), or a ``forget`` there would leave them behind. A run
interrupted after the copy is finished by running it again: a target that
already matches its source is not copied twice, only the files are moved.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from events.backends import DB_NAME, open_log, open_reader
from events.jid import phone_digits
from events.transfer import Side, SQLiteSide, Summary, copy, summarise
from pipeline.config import dsn_problem
from pipeline.media import MediaStore, move_media
from pipeline.store_lock import AlreadyRunning, DaemonLock
from pipeline.tools._args import BadArgument, latest_config
from pipeline.tools._where import Where, chosen_number, number_arg


def migrate(store: Path, *, to: str | None, source: str | None, number: str | None) -> str:
    """Copy one way (``to``: into PostgreSQL; ``source``: out of it); the line to print."""
    if (to is None) == (source is None):
        raise BadArgument("give --to postgresql://… (from the store) or --from postgresql://…")
    url = to or source
    assert url is not None
    if problem := dsn_problem(url):
        raise BadArgument(f"--{'to' if to else 'from'}: {problem}")
    with _no_daemon(Path(store)):
        return _migrate(store, url, to=to is not None, number=number_arg(number))


@contextmanager
def _no_daemon(store: Path) -> Iterator[None]:
    """Hold the store's daemon lock while copying (none to hold in a store not made yet)."""
    if not store.is_dir():
        yield
        return
    lock = DaemonLock(store)
    try:
        lock.acquire()
    except AlreadyRunning as exc:
        raise BadArgument(f"{exc}; stop it before migrate") from None
    try:
        yield
    finally:
        lock.release()


def _migrate(store: Path, url: str, *, to: bool, number: str | None) -> str:
    from events.postgres import PostgresSide  # noqa: PLC0415  (loads psycopg)

    local = SQLiteSide(store)
    if to:
        name = number or _owner_of(store)
        _finish_compactions(store, None, None)
        with _no_remote_daemon(url, name):
            remote = PostgresSide(url, name=name)
            said = _copied(local, remote)
        return said + _moved(move_media(store, None, name), store, name)
    name = chosen_number(Where(Path(store), url, number))
    with _no_remote_daemon(url, name):
        _finish_compactions(store, url, name)
        remote = PostgresSide(url, name=name)
        said = _copied(remote, local)
    return said + _moved(move_media(store, name, None), store, None)


def _finish_compactions(store: Path, url: str | None, name: str | None) -> None:
    """A compaction a failure left in the source is finished first: the copy carries the
    events and snapshots, not the record of a compaction under way (``compactions``),
    so its marker would never be written."""
    with open_log(store, url=url, name=name) as log:
        log.finish_compactions()


@contextmanager
def _no_remote_daemon(url: str, number: str) -> Iterator[None]:
    """Hold the lease of ``number``'s log in PostgreSQL while copying, as its daemon would."""
    from events.postgres import Lease  # noqa: PLC0415  (loads psycopg)

    lease = Lease(url, name=number)
    try:
        if not lease.take(f"migrate pid {os.getpid()} on {socket.gethostname()}"):
            holder = lease.holder() or "unknown"
            raise BadArgument(
                f"a daemon runs on number {number}'s log ({lease.where.where}; {holder});"
                " stop it before migrate"
            )
        yield
    finally:
        lease.release()


def _copied(source: Side, target: Side) -> str:
    """``copy``, unless an earlier run copied it all already (then only the files are left)."""
    if not target.is_empty():
        done = summarise(source)
        if summarise(target) == done:
            return (
                f"{target.where} already holds {source.where} ({done.events} events;"
                f" counts and sha256 {done.sha256[:16]}… match): nothing to copy"
            )
    # Refuses a target that holds other events.
    return _said(copy(source, target), source.where, target.where)


def _moved(count: int, store: Path, number: str | None) -> str:
    if not count:
        return ""
    where = MediaStore.of(store, number).directory
    return f"; moved {count} media file{'s' if count != 1 else ''} to {where}/"


def _owner_of(store: Path) -> str:
    """The number a store's log belongs to: ``whatsapp.phone_number`` of its last config."""
    with open_reader(store) as log:
        config = latest_config(log.read(chats=[""]))
    if config is None:
        raise BadArgument(
            f"{Path(store) / DB_NAME} has no config to tell its number: give --number"
        )
    return phone_digits(config.whatsapp.phone_number)


def _said(summary: Summary, source: str, target: str) -> str:
    return (
        f"copied {summary.events} events (seqs handed out: {summary.counter}) and"
        f" {summary.snapshots} snapshots from {source} to {target};"
        f" counts and sha256 {summary.sha256[:16]}… match"
    )
