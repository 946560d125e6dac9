"""``python -m pipeline migrate``: a store's SQLite log into PostgreSQL, or back (a backup).

``--to postgresql://…`` copies ``STORE/events.db`` into the log of its number
in that database; ``--from postgresql://…`` copies one number's log into
``STORE/events.db``. Every seq, key, body and snapshot is kept, the target is
written in one transaction and must be empty, and both sides must then agree
on their counts and a sha256 over every row (``events.transfer``). Stop the
daemon first: what it appends after the copy began stays behind.
"""

from __future__ import annotations

from pathlib import Path

from events.backends import DB_NAME, open_reader
from events.jid import phone_digits
from events.transfer import SQLiteSide, Summary, copy
from pipeline.config import dsn_problem
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
    from events.postgres import PostgresSide  # noqa: PLC0415  (loads psycopg)

    local = SQLiteSide(store)
    number = number_arg(number)
    if to is not None:
        name = number or _owner_of(store)
        remote = PostgresSide(url, name=name)
        summary = copy(local, remote)
        return _said(summary, local.where, remote.where)
    remote = PostgresSide(url, name=chosen_number(Where(Path(store), url, number)))
    summary = copy(remote, local)
    return _said(summary, remote.where, local.where)


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
