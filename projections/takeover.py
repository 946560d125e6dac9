"""Chats where the owner took over: the bot stays silent there for a while.

A ``Compacted`` that removed a chat's latest take-over ends its pause, as a
fold of what is left would (under rotation, its earlier ones went too).
"""

from __future__ import annotations

import msgspec

from events.model import Compacted, MessageSkipped, Recorded
from projections.base import Handlers, Projection, removal


class State(msgspec.Struct, kw_only=True):
    # chat -> ts of the owner's last message that paused the bot
    paused_since: dict[str, float] = {}
    paused_seq: dict[str, int] = {}  # chat -> seq of that message's skip


def _skipped(state: State, rec: Recorded, ev: MessageSkipped) -> None:
    if ev.reason == "takeover":
        state.paused_since[ev.chat] = rec.ts
        state.paused_seq[ev.chat] = rec.seq


def _compacted(state: State, rec: Recorded, ev: Compacted) -> None:
    gone = removal(ev)
    if gone is None:
        return
    for chat, since in list(state.paused_since.items()):
        if gone.gone(state.paused_seq[chat], since, chat):
            del state.paused_since[chat], state.paused_seq[chat]


def paused_until(state: State, chat: str, minutes: float) -> float | None:
    """When the pause in ``chat`` ends (it may be past); None if never paused."""
    since = state.paused_since.get(chat)
    return None if since is None else since + minutes * 60


_HANDLERS: Handlers[State] = {MessageSkipped: _skipped, Compacted: _compacted}
PROJECTION = Projection.of("takeover", State, _HANDLERS)
apply = PROJECTION.apply
