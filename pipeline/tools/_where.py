"""Which log an offline tool works on: the store's SQLite file, or one number's log in PostgreSQL.

One PostgreSQL database holds a log per WhatsApp number. A tool takes the
number from ``--number``; without it, a database with a single log needs no
choice, and one with several is a one-line error that lists them.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple, TypeVar

from events.backends import DB_NAME, is_postgres, log_names, open_log, open_reader
from events.jid import InvalidJid, phone_digits
from events.protocol import LogReader, LogWriter, NoLog
from pipeline.config import store_url
from pipeline.paths import env_file, log_url, store_dir
from pipeline.tools._args import BadArgument, latest_config

DEFAULT_CONFIG = Path("app.json")
L = TypeVar("L", bound=LogReader)


class Where(NamedTuple):
    """The store directory, the log's PostgreSQL URL (None: ``STORE/events.db``), the number."""

    store: Path
    url: str | None = None
    number: str | None = None


def where_from_args(
    store: Path | None, url: str | None, number: str | None, config: Path | None = None
) -> Where:
    """``--store``, ``--log-url``/``WABOT_LOG_URL``/``store.url`` and ``--number`` as one place.

    ``store.url`` is read from ``config`` (``--config``), else ``./app.json`` if present.
    """
    env = env_file(None)
    chosen = log_url(url, env, None)
    if chosen is None:
        chosen = store_url(config or DEFAULT_CONFIG)
    return Where(store_dir(store, env), chosen, number_arg(number))


def number_arg(text: str | None) -> str | None:
    """``--number``: the owner's phone number, as digits (``+49 170…`` is fine)."""
    if text is None:
        return None
    try:
        return phone_digits(text)
    except InvalidJid as exc:
        raise BadArgument(f"--number: {exc}") from None


def as_where(place: Path | Where) -> Where:
    """Tools take a bare store directory too (the SQLite log in it)."""
    return place if isinstance(place, Where) else Where(Path(place))


def numbers(where: Where) -> list[str]:
    """The numbers with a log at ``where`` (PostgreSQL); ``--number`` narrows it to one."""
    assert is_postgres(where.url)
    names = log_names(where.url)
    if where.number is not None:
        if where.number not in names:
            listed = ", ".join(names) or "none"
            raise NoLog(f"{_label(where.url)}: no log for number {where.number} (logs: {listed})")
        return [where.number]
    if not names:
        raise NoLog(f"{_label(where.url)}: no event log here (wrong URL, or the bot never ran)")
    return names


def chosen_number(where: Where) -> str:
    """The one number a tool works on; ambiguous without ``--number`` if there are several."""
    found = numbers(where)
    if len(found) > 1:
        assert where.url is not None
        raise BadArgument(
            f"{_label(where.url)} holds the logs of {len(found)} numbers ({', '.join(found)}):"
            " choose one with --number"
        )
    return found[0]


def open_tool_reader(place: Path | Where) -> LogReader:
    """The log read-only; ``NoLog`` when there is none."""
    where = as_where(place)
    if is_postgres(where.url):
        return open_reader(where.store, url=where.url, name=chosen_number(where))
    return _owned(open_reader(where.store), where)


def open_tool_writer(place: Path | Where) -> LogWriter:
    """The log for ``compact``/``forget``: it must exist already (never created here)."""
    where = as_where(place)
    if is_postgres(where.url):
        return open_log(where.store, url=where.url, name=chosen_number(where))
    path = where.store / DB_NAME
    if not path.is_file():
        raise NoLog(f"{path}: no event log here (wrong --store?)")
    return _owned(open_log(where.store), where)


def _owned(log: L, where: Where) -> L:
    """A store holds one number's log: ``--number`` must be that one, not silently another."""
    if where.number is None:
        return log
    config = latest_config(log.read(chats=[""]))
    owner = phone_digits(config.whatsapp.phone_number) if config is not None else None
    if owner is not None and owner != where.number:
        log.close()
        raise BadArgument(
            f"{where.store / DB_NAME} is the log of {owner}, not {where.number}"
            " (a store holds one number; several need PostgreSQL)"
        )
    return log


def _label(url: str) -> str:
    """The server and database, never the password."""
    from events.postgres import target  # noqa: PLC0415  (loads psycopg)

    return target(url).where
