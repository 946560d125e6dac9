"""What a rotation must keep although it is old: the configs still needed.

The latest ``ConfigLoaded`` is the config in force; a config that a request
still in the log was built with lets ``replay.py --recorded`` rebuild that
request. Everything else older than the retention may go, so a rotation is a
``Selection`` (older than, keep these few) that the log evaluates on its own
index, without reading events back.
"""

from __future__ import annotations

import msgspec

from events.model import ConfigLoaded, LlmRequested, Recorded
from events.protocol import Selection
from events.units import DAY
from projections.base import Handlers, Projection, dispatcher


class State(msgspec.Struct, kw_only=True):
    latest_config: int = 0  # seq of the newest ConfigLoaded (0: none)
    configs: dict[str, list[int]] = {}  # config hash -> seqs of its ConfigLoaded events
    last_used: dict[str, float] = {}  # config hash -> ts of the newest request built with it


def _loaded(state: State, rec: Recorded, ev: ConfigLoaded) -> None:
    state.latest_config = rec.seq
    state.configs.setdefault(ev.hash, []).append(rec.seq)


def _requested(state: State, rec: Recorded, ev: LlmRequested) -> None:
    state.last_used[ev.config_hash] = rec.ts


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


_HANDLERS: Handlers[State] = {ConfigLoaded: _loaded, LlmRequested: _requested}
apply = dispatcher(_HANDLERS)
PROJECTION = Projection("retention", State, apply, _HANDLERS)
