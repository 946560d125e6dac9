"""Chats where the owner took over: the bot stays silent there for a while."""

from __future__ import annotations

import msgspec

from events.model import MessageSkipped, Recorded
from projections.base import Handlers, Projection, dispatcher


class State(msgspec.Struct, kw_only=True):
    # chat -> ts of the owner's last message that paused the bot
    paused_since: dict[str, float] = {}


def _skipped(state: State, rec: Recorded, ev: MessageSkipped) -> None:
    if ev.reason == "takeover":
        state.paused_since[ev.chat] = rec.ts


def paused_until(state: State, chat: str, minutes: float) -> float | None:
    """When the pause in ``chat`` ends (it may be past); None if never paused."""
    since = state.paused_since.get(chat)
    return None if since is None else since + minutes * 60


_HANDLERS: Handlers[State] = {MessageSkipped: _skipped}
apply = dispatcher(_HANDLERS)
PROJECTION = Projection("takeover", State, apply, _HANDLERS)
