"""Chats where the owner took over: the bot stays silent there for a while.

The owner's ``/resume`` of the chat (``ChatResumed``) ends its take-over
early; the owner's next message there starts a new one.

A ``Compacted`` that removed a chat's latest take-over ends its pause, as a
fold of what is left would (under rotation, its earlier ones went too); one
that removed the ``ChatResumed`` that ended it puts it back in force.
"""

from __future__ import annotations

import msgspec

from events.model import ChatResumed, Compacted, MessageSkipped, Recorded
from projections.base import Handlers, Projection, removal


class State(msgspec.Struct, kw_only=True):
    # chat -> ts of the owner's last message that paused the bot
    paused_since: dict[str, float] = {}
    paused_seq: dict[str, int] = {}  # chat -> seq of that message's skip
    # chat -> (seq, ts) of the owner's /resume that ended that take-over early
    resumed: dict[str, tuple[int, float]] = {}


def _skipped(state: State, rec: Recorded, ev: MessageSkipped) -> None:
    if ev.reason == "takeover":
        state.paused_since[ev.chat] = rec.ts
        state.paused_seq[ev.chat] = rec.seq
        state.resumed.pop(ev.chat, None)


def _resumed(state: State, rec: Recorded, ev: ChatResumed) -> None:
    if ev.chat in state.paused_since:
        state.resumed[ev.chat] = (rec.seq, rec.ts)


def _compacted(state: State, rec: Recorded, ev: Compacted) -> None:
    gone = removal(ev)
    if gone is None:
        return
    for chat, since in list(state.paused_since.items()):
        if gone.gone(state.paused_seq[chat], since, chat):
            del state.paused_since[chat], state.paused_seq[chat]
            state.resumed.pop(chat, None)
    for chat, (seq, ts) in list(state.resumed.items()):
        if gone.gone(seq, ts, chat):
            del state.resumed[chat]


def paused_until(state: State, chat: str, minutes: float) -> float | None:
    """When the pause in ``chat`` ends (it may be past: ``/resume`` ended it, or
    its time is up); None if never paused."""
    since = state.paused_since.get(chat)
    if since is None:
        return None
    until = since + minutes * 60
    resumed = state.resumed.get(chat)
    return until if resumed is None else min(until, resumed[1])


def in_force(state: State, now: float, minutes: float) -> dict[str, float]:
    """Every chat taken over now -> when the bot speaks there again."""
    ends = {chat: paused_until(state, chat, minutes) for chat in state.paused_since}
    return {chat: end for chat, end in ends.items() if end is not None and end > now}


_HANDLERS: Handlers[State] = {
    MessageSkipped: _skipped,
    ChatResumed: _resumed,
    Compacted: _compacted,
}
PROJECTION = Projection.of("takeover", State, _HANDLERS)
apply = PROJECTION.apply
