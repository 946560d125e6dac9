"""Each chat's disappearing-message timer, so the bot's replies there disappear too.

WhatsApp carries the timer on every message of a chat that has one
(``contextInfo.expiration``, recorded as ``MessageReceived.expiration``; 0:
off), the owner's own messages included, and announces a change with a
message of its own (``TimerChanged``): the only word of a timer switched off,
since later messages then carry none. A chat's timer is the value of its
newest message that said one; a message that says nothing changes nothing.
Replies sent without it would never disappear for the recipient; replies
sent with it after it went off would disappear when they should stay.

A ``Compacted`` drops a chat's timer when the message it came from went (under
rotation and forget the earlier messages went too); it is learnt again from
the chat's next message, which carries it.
"""

from __future__ import annotations

import msgspec

from events.model import Compacted, MessageReceived, Recorded, TimerChanged
from projections.base import Handlers, Projection, removal


class Timer(msgspec.Struct, kw_only=True, gc=False):
    seconds: int
    seq: int  # the message it came from
    ts: float


class State(msgspec.Struct, kw_only=True):
    chats: dict[str, Timer] = {}


def _received(state: State, rec: Recorded, ev: MessageReceived) -> None:
    if ev.expiration is not None:
        state.chats[ev.chat] = Timer(seconds=ev.expiration, seq=rec.seq, ts=rec.ts)


def _changed(state: State, rec: Recorded, ev: TimerChanged) -> None:
    state.chats[ev.chat] = Timer(seconds=ev.expiration, seq=rec.seq, ts=rec.ts)


def _compacted(state: State, rec: Recorded, ev: Compacted) -> None:
    gone = removal(ev)
    if gone is None:
        return
    for chat, timer in list(state.chats.items()):
        if gone.gone(timer.seq, timer.ts, chat):
            del state.chats[chat]


def seconds(state: State, chat: str) -> int | None:
    """The timer replies in ``chat`` carry; None when it is off or not known."""
    timer = state.chats.get(chat)
    return timer.seconds if timer is not None and timer.seconds > 0 else None


_HANDLERS: Handlers[State] = {
    MessageReceived: _received,
    TimerChanged: _changed,
    Compacted: _compacted,
}
PROJECTION = Projection.of("timers", State, _HANDLERS)
apply = PROJECTION.apply
