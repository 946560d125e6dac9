"""What a rotation must keep although it is old: the configs and the facts still needed.

The latest ``ConfigLoaded`` is the config in force; a config that a request
still in the log was built with lets ``replay.py --recorded`` rebuild that
request. The scheduler needs the newest check-in and startup message and what
marked them sent (else a short retention makes it send them again); the
connection's newest ``TransportStatus`` and the newest ones naming the owner's
ids keep the state and who the owner is. (The messages that tie the ids of a
person the bot serves are the aliases projection's ``teachers``.) Everything else older
than the retention may go, so a rotation is a ``Selection`` (older than, keep
these few) that the log evaluates on its own index, without reading events back.
``expiry`` is the other compaction a rotation may run: the texts of ended sessions.

A ``Compacted`` drops the configs and the uses that went: the newest config
left is then the one in force, and a config counts as used by the newest
request left that was built with it. (A newest fact that went stays named in
``newest``: keeping a seq that is gone keeps nothing.)
"""

from __future__ import annotations

from collections.abc import Collection

import msgspec

from events.model import (
    Compacted,
    ConfigLoaded,
    LlmRequested,
    Recorded,
    ReplyFailed,
    ReplyPlanned,
    ReplySent,
    TransportStatus,
)
from events.protocol import Selection
from events.units import DAY
from projections import sessions
from projections.base import Handlers, Projection, removal
from projections.budget import SPEND_WINDOW

_SCHEDULED = ("vitality", "startup")  # the purposes whose newest plan the schedule reads


class State(msgspec.Struct, kw_only=True):
    latest_config: int = 0  # seq of the newest ConfigLoaded (0: none)
    configs: dict[str, list[int]] = {}  # config hash -> seqs of its ConfigLoaded events
    last_used: dict[str, float] = {}  # config hash -> ts of the newest request built with it
    # "vitality"/"startup" -> seqs of the newest such plan and what marked it sent or failed;
    # "status", "me_pn", "me_lid" -> [seq of the newest TransportStatus (naming that id)].
    newest: dict[str, list[int]] = {}
    scheduled: dict[str, str] = {}  # reply_id of the newest vitality/startup plan -> purpose
    loaded_at: dict[int, float] = {}  # seq of each ConfigLoaded -> its ts
    used_by: dict[str, dict[str, tuple[int, float]]] = {}  # hash -> chat -> newest request


def _loaded(state: State, rec: Recorded, ev: ConfigLoaded) -> None:
    state.latest_config = rec.seq
    state.configs.setdefault(ev.hash, []).append(rec.seq)
    state.loaded_at[rec.seq] = rec.ts


def _requested(state: State, rec: Recorded, ev: LlmRequested) -> None:
    state.last_used[ev.config_hash] = rec.ts
    chats = state.used_by.get(ev.config_hash)
    if chats is None:
        chats = state.used_by[ev.config_hash] = {}
    chats[ev.chat] = (rec.seq, rec.ts)


def _compacted(state: State, rec: Recorded, ev: Compacted) -> None:
    gone = removal(ev)
    if gone is None:
        return
    loaded = {seq: ts for seq, ts in state.loaded_at.items() if not gone.gone(seq, ts, "")}
    state.loaded_at = loaded
    configs = {digest: [s for s in seqs if s in loaded] for digest, seqs in state.configs.items()}
    state.configs = {digest: seqs for digest, seqs in configs.items() if seqs}
    state.latest_config = max(loaded, default=0)
    used_by = {}
    for digest, chats in state.used_by.items():
        left = {chat: at for chat, at in chats.items() if not gone.gone(at[0], at[1], chat)}
        if left:
            used_by[digest] = left
    state.used_by = used_by
    state.last_used = {d: max(ts for _, ts in chats.values()) for d, chats in used_by.items()}


def _planned(state: State, rec: Recorded, ev: ReplyPlanned) -> None:
    if ev.purpose not in _SCHEDULED:
        return
    for reply_id in [r for r, purpose in state.scheduled.items() if purpose == ev.purpose]:
        if reply_id != ev.reply_id:
            del state.scheduled[reply_id]
    state.scheduled[ev.reply_id] = ev.purpose
    state.newest[ev.purpose] = [rec.seq]


def _settled(state: State, rec: Recorded, ev: ReplySent | ReplyFailed) -> None:
    purpose = state.scheduled.get(ev.reply_id)
    if purpose is not None:
        state.newest[purpose].append(rec.seq)


def _status(state: State, rec: Recorded, ev: TransportStatus) -> None:
    state.newest["status"] = [rec.seq]
    if ev.me_pn:
        state.newest["me_pn"] = [rec.seq]
    if ev.me_lid:
        state.newest["me_lid"] = [rec.seq]


def kept(state: State, cutoff: float) -> frozenset[int]:
    """The seqs a rotation at ``cutoff`` keeps: the configs still used, the newest facts."""
    keep = {state.latest_config} if state.latest_config else set()
    for digest, seqs in state.configs.items():
        if state.last_used.get(digest, 0.0) >= cutoff:
            keep.update(seqs)
    for seqs in state.newest.values():
        keep.update(seqs)
    return frozenset(keep)


def rotation(
    state: State, retention_days: float, now: float, also: Collection[int] = ()
) -> Selection:
    """What a rotation removes: all older than the retention but what is still needed.

    ``also``: more seqs to keep (the aliases projection's ``teachers``).
    """
    cutoff = now - retention_days * DAY
    return Selection(older_than=cutoff, keep=kept(state, cutoff) | frozenset(also))


def expiry(  # noqa: PLR0917 - the session config's three settings travel apart
    state: sessions.State,
    now: float,
    mode: str,
    ttl_minutes: float,
    tz: str,
    also: Collection[int] = (),
) -> Selection | None:
    """What ``rotation.drop_expired_sessions`` removes: the texts of the sessions that
    ended or expired (``sessions.expired_texts``); None when there are none.

    Their messages, edits, documents and LLM requests go at once; their answers,
    replies and transcripts once the budget no longer counts them
    (``budget.SPEND_WINDOW``), so dropping them never loosens a limit.
    ``also``: seqs kept anyway (the aliases projection's ``teachers``).
    """
    found = sessions.expired_texts(state, now, mode, ttl_minutes, tz, now - SPEND_WINDOW)
    doomed = found - frozenset(also)
    return Selection(seqs=doomed) if doomed else None


_HANDLERS: Handlers[State] = {
    ConfigLoaded: _loaded,
    LlmRequested: _requested,
    ReplyPlanned: _planned,
    ReplySent: _settled,
    ReplyFailed: _settled,
    TransportStatus: _status,
    Compacted: _compacted,
}
PROJECTION = Projection.of("retention", State, _HANDLERS)
apply = PROJECTION.apply
