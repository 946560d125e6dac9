"""``compact`` and ``forget``: the only ways events leave the log.

Both go through the log's ``compact``, which deletes in short transactions
and records one ``Compacted`` marker; a running daemon sees the marker and
refolds its projections from what is left. Safe to run beside the daemon.
Afterwards the attachments no remaining event refers to are deleted
(``sweep_media``): those of a forgotten chat at once, others once they are
older than ``GRACE_SECONDS`` (a running daemon may be recording one).
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from events.backends import is_postgres
from events.jid import InvalidJid, normalize
from events.model import Compacted, Recorded
from events.protocol import LogReader, Selection
from pipeline.config import AppConfig, UnknownChat
from pipeline.media import MediaStore, referenced_media
from pipeline.tools._args import BadArgument, latest_config
from pipeline.tools._where import Where, as_where, chosen_number, open_tool_writer
from projections import retention
from projections.runner import Runner

DEFAULT_RETENTION_DAYS = 30.0


def compact(store: Path | Where, now: float) -> str:
    """Rotate the log by ``rotation.retention_days`` of the config in force."""
    with open_tool_writer(store) as log:
        states = Runner.start(log).states
        config = latest_config(log.read(chats=[""]))
        days = config.rotation.retention_days if config else DEFAULT_RETENTION_DAYS
        marker = log.compact("rotation", retention.rotation(states.retention, days, now))
        swept = sweep_media(store, log)
    files = _files(swept)
    if marker is None:
        return f"nothing older than {days:g} days to remove{files}"
    return f"removed {_compacted(marker).removed} events older than {days:g} days{files}"


def forget(store: Path | Where, chat: str) -> str:
    """Remove every event of one chat; the owner's right to have it gone."""
    with open_tool_writer(store) as log:
        config = latest_config(log.read(chats=[""]))
        jid = _resolve(chat, config)
        theirs = referenced_media(log.read(chats=[jid]))
        marker = log.compact("forget", Selection(chats=frozenset({jid})))
        swept = sweep_media(store, log, doomed=theirs)
    if marker is None:
        return f"nothing recorded for {jid}{_files(swept)}"
    return f"forgot {jid}: {_compacted(marker).removed} events removed{_files(swept)}"


def sweep_media(store: Path | Where, log: LogReader, *, doomed: Collection[str] = ()) -> int:
    """Delete the media files no event in ``log`` refers to; returns how many went.

    ``doomed``: files of events just removed on purpose, deleted even if young.
    The files are in the store directory, wherever the log is (SQLite or PostgreSQL).
    """
    where = as_where(store)
    number = chosen_number(where) if is_postgres(where.url) else None
    media = MediaStore.of(where.store, number)
    return media.sweep(log.media(), doomed=doomed)


def _files(swept: int) -> str:
    return f"; deleted {swept} media file{'s' if swept != 1 else ''}" if swept else ""


def _resolve(chat: str, config: AppConfig | None) -> str:
    """An entity name needs the config; a JID or phone number does not."""
    try:
        return config.resolve_chat(chat) if config is not None else normalize(chat)
    except (UnknownChat, InvalidJid) as exc:
        raise BadArgument(str(exc)) from None


def _compacted(marker: Recorded) -> Compacted:
    assert isinstance(marker.event, Compacted)
    return marker.event
