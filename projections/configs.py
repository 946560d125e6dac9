"""The configuration in force: the latest ``ConfigLoaded`` and the hash before it."""

from __future__ import annotations

from typing import Any

import msgspec

from events.model import ConfigLoaded, Recorded
from projections.base import Handlers, Projection, dispatcher


class Loaded(msgspec.Struct, kw_only=True, gc=False):
    seq: int
    ts: float
    hash: str
    config: dict[str, Any]
    path: str


class State(msgspec.Struct, kw_only=True):
    latest: Loaded | None = None
    previous_hash: str | None = None  # of the ConfigLoaded before ``latest``


def _loaded(state: State, rec: Recorded, ev: ConfigLoaded) -> None:
    if state.latest is not None:
        state.previous_hash = state.latest.hash
    state.latest = Loaded(seq=rec.seq, ts=rec.ts, hash=ev.hash, config=ev.config, path=ev.path)


def current(state: State) -> Loaded | None:
    return state.latest


_HANDLERS: Handlers[State] = {ConfigLoaded: _loaded}
apply = dispatcher(_HANDLERS)
PROJECTION = Projection("configs", State, apply, _HANDLERS)
