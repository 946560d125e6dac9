"""The configuration in force: the latest ``ConfigLoaded``.

A rotation keeps it (``projections.retention``); a ``Compacted`` that removed
it all the same leaves no configuration known, as a fold of what is left
would if no older one was kept.
"""

from __future__ import annotations

from typing import Any

import msgspec

from events.model import Compacted, ConfigLoaded, Recorded
from projections.base import Handlers, Projection, removal


class Loaded(msgspec.Struct, kw_only=True, gc=False):
    seq: int
    ts: float
    hash: str
    config: dict[str, Any]
    path: str


class State(msgspec.Struct, kw_only=True):
    latest: Loaded | None = None


def _loaded(state: State, rec: Recorded, ev: ConfigLoaded) -> None:
    state.latest = Loaded(seq=rec.seq, ts=rec.ts, hash=ev.hash, config=ev.config, path=ev.path)


def _compacted(state: State, rec: Recorded, ev: Compacted) -> None:
    gone = removal(ev)
    latest = state.latest
    if gone is not None and latest is not None and gone.gone(latest.seq, latest.ts, ""):
        state.latest = None


def current(state: State) -> Loaded | None:
    return state.latest


_HANDLERS: Handlers[State] = {ConfigLoaded: _loaded, Compacted: _compacted}
PROJECTION = Projection.of("configs", State, _HANDLERS)
apply = PROJECTION.apply
