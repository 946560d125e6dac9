"""What a rotation must keep although it is old: the configs still needed.

The latest ``ConfigLoaded`` is the config in force; a config that a request
still in the log was built with lets ``replay.py --recorded`` rebuild that
request. Everything else older than the retention may go, so a rotation is a
``Selection`` (older than, keep these few) that the log evaluates on its own
index, without reading events back.

A ``Compacted`` drops the configs and the uses that went: the newest config
left is then the one in force, and a config counts as used by the newest
request left that was built with it.
"""

from __future__ import annotations

import msgspec

from events.model import Compacted, ConfigLoaded, LlmRequested, Recorded
from events.protocol import Selection
from events.units import DAY
from projections.base import Handlers, Projection, dispatcher, removal


class State(msgspec.Struct, kw_only=True):
    latest_config: int = 0  # seq of the newest ConfigLoaded (0: none)
    configs: dict[str, list[int]] = {}  # config hash -> seqs of its ConfigLoaded events
    last_used: dict[str, float] = {}  # config hash -> ts of the newest request built with it
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


def kept(state: State, cutoff: float) -> frozenset[int]:
    """The seqs a rotation at ``cutoff`` keeps: the config in force and those still used."""
    keep = {state.latest_config} if state.latest_config else set()
    for digest, seqs in state.configs.items():
        if state.last_used.get(digest, 0.0) >= cutoff:
            keep.update(seqs)
    return frozenset(keep)


def rotation(state: State, retention_days: float, now: float) -> Selection:
    """What a rotation removes: all older than the retention but the configs still needed."""
    cutoff = now - retention_days * DAY
    return Selection(older_than=cutoff, keep=kept(state, cutoff))


_HANDLERS: Handlers[State] = {
    ConfigLoaded: _loaded,
    LlmRequested: _requested,
    Compacted: _compacted,
}
apply = dispatcher(_HANDLERS)
PROJECTION = Projection("retention", State, apply, _HANDLERS)
