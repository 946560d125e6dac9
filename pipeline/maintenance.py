"""``compact`` and ``forget``: the only ways events leave the log.

Both go through ``SQLiteLog.compact``, which deletes and records a
``Compacted`` marker in one transaction; a running daemon sees the marker and
refolds its projections from what is left. Safe to run beside the daemon.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from events.jid import InvalidJid, normalize
from events.log import DB_NAME, SQLiteLog
from events.model import Compacted, ConfigLoaded, LlmRequested, Recorded
from pipeline.chatarg import BadArgument, latest_config
from pipeline.config import AppConfig, UnknownChat
from pipeline.readonly import NoLog

DAY = 86_400.0
DEFAULT_RETENTION_DAYS = 30.0


def rotation_doomed(records: Iterable[Recorded], cutoff: float) -> Callable[[Recorded], bool]:
    """Which events a rotation removes: all older than ``cutoff`` but the configs still in use.

    The latest ``ConfigLoaded`` stays (it is the config in force), and so does
    every config a surviving ``LlmRequested`` was built with, so ``replay.py
    --recorded`` can still rebuild each remaining request.
    """
    latest_config = 0
    used: set[str] = set()
    for rec in records:
        event = rec.event
        if isinstance(event, ConfigLoaded):
            latest_config = rec.seq
        elif isinstance(event, LlmRequested) and rec.ts >= cutoff:
            used.add(event.config_hash)

    def doomed(rec: Recorded) -> bool:
        if rec.ts >= cutoff:
            return False
        event = rec.event
        return not (
            isinstance(event, ConfigLoaded) and (rec.seq == latest_config or event.hash in used)
        )

    return doomed


def rotate(log: SQLiteLog, retention_days: float, now: float) -> Compacted | None:
    """Remove what is older than the retention; the ``Compacted`` marker, or None."""
    cutoff = now - retention_days * DAY
    marker = log.compact("rotation", rotation_doomed(log.read(), cutoff), older_than=cutoff)
    return None if marker is None else _compacted(marker)


def compact(store: Path, now: float) -> str:
    """Rotate the log by ``rotation.retention_days`` of the config in force."""
    with _open(store) as log:
        config = latest_config(log.read())
        days = config.rotation.retention_days if config else DEFAULT_RETENTION_DAYS
        marker = rotate(log, days, now)
    if marker is None:
        return f"nothing older than {days:g} days to remove"
    return f"removed {marker.removed} events older than {days:g} days"


def forget(store: Path, chat: str) -> str:
    """Remove every event of one chat; the owner's right to have it gone."""
    with _open(store) as log:
        config = latest_config(log.read())
        jid = _resolve(chat, config)
        marker = log.compact("forget", lambda _rec: True, chat=jid)
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


def _open(store: Path) -> SQLiteLog:
    path = Path(store) / DB_NAME
    if not path.is_file():
        raise NoLog(f"{path}: no event log here (wrong --store?)")
    return SQLiteLog(path)
