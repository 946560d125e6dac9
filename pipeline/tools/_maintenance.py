"""``compact`` and ``forget``: the only ways events leave the log.

Both go through the log's ``compact``, which deletes in short transactions
and records one ``Compacted`` marker; a running daemon sees the marker and
refolds its projections from what is left. Safe to run beside the daemon.
"""

from __future__ import annotations

from pathlib import Path

from events.jid import InvalidJid, normalize
from events.model import Compacted, Recorded
from events.protocol import Selection
from pipeline.config import AppConfig, UnknownChat
from pipeline.tools._args import BadArgument, latest_config
from pipeline.tools._where import Where, open_tool_writer
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
    if marker is None:
        return f"nothing older than {days:g} days to remove"
    return f"removed {_compacted(marker).removed} events older than {days:g} days"


def forget(store: Path | Where, chat: str) -> str:
    """Remove every event of one chat; the owner's right to have it gone."""
    with open_tool_writer(store) as log:
        config = latest_config(log.read(chats=[""]))
        jid = _resolve(chat, config)
        marker = log.compact("forget", Selection(chats=frozenset({jid})))
    if marker is None:
        return f"nothing recorded for {jid}"
    return f"forgot {jid}: {_compacted(marker).removed} events removed"


def _resolve(chat: str, config: AppConfig | None) -> str:
    """An entity name needs the config; a JID or phone number does not."""
    try:
        return config.resolve_chat(chat) if config is not None else normalize(chat)
    except (UnknownChat, InvalidJid) as exc:
        raise BadArgument(str(exc)) from None


def _compacted(marker: Recorded) -> Compacted:
    assert isinstance(marker.event, Compacted)
    return marker.event
