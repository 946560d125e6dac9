"""Where to send to a chat: the id WhatsApp last used for it.

A contact monitored by phone number is mostly addressed by LID now, and a send
to the phone JID of a LID-migrated account may never arrive; so replies go to
the id the chat's last message came by (``MessageReceived.via``), or the id a
send was actually delivered to (``ReplySent.to``). ``canonical`` maps those ids
back to the chat, for events (edits, revokes) that name only the id.

Each entry keeps where it came from: ``last`` the event that set it (always
one of the chat's own), ``canonical`` per chat the newest event that named
the id. A ``Compacted`` drops what went: a chat's address when its latest
event went (under rotation the earlier ones went too), an id's chat falls
back to the newest other chat that named it.
"""

from __future__ import annotations

import msgspec

from events.model import Compacted, MessageReceived, Recorded, ReplySent
from projections.base import Handlers, Projection, removal


class State(msgspec.Struct, kw_only=True):
    last: dict[str, str] = {}  # chat -> the id to send to, when not the chat itself
    canonical: dict[str, str] = {}  # any id seen for a chat -> the chat
    last_at: dict[str, tuple[int, float]] = {}  # chat -> (seq, ts) of the event behind ``last``
    # id -> chat -> (seq, ts) of the newest event of that chat that named the id
    named_at: dict[str, dict[str, tuple[int, float]]] = {}


def _name(state: State, rec: Recorded, other: str, chat: str) -> None:
    state.canonical[other] = chat
    chats = state.named_at.get(other)
    if chats is None:
        chats = state.named_at[other] = {}
    else:
        chats.pop(chat, None)  # insertion order is recency order
    chats[chat] = (rec.seq, rec.ts)


def _use(state: State, rec: Recorded, chat: str, address: str | None) -> None:
    if not address or address == chat:
        if state.last.pop(chat, None) is not None:
            del state.last_at[chat]
        return
    state.last[chat] = address
    state.last_at[chat] = (rec.seq, rec.ts)
    _name(state, rec, address, chat)


def _received(state: State, rec: Recorded, ev: MessageReceived) -> None:
    # The owner's own messages count too: WhatsApp files them under the chat's id.
    _use(state, rec, ev.chat, ev.via)
    for other in (ev.via, ev.chat_alt):
        if other and other != ev.chat:
            _name(state, rec, other, ev.chat)


def _sent(state: State, rec: Recorded, ev: ReplySent) -> None:
    if ev.to:
        _use(state, rec, ev.chat, ev.to)


def _compacted(state: State, rec: Recorded, ev: Compacted) -> None:
    gone = removal(ev)
    if gone is None:
        return
    for chat, (seq, ts) in list(state.last_at.items()):
        if gone.gone(seq, ts, chat):
            del state.last[chat], state.last_at[chat]
    for other, chats in list(state.named_at.items()):
        left = {chat: at for chat, at in chats.items() if not gone.gone(at[0], at[1], chat)}
        if left:
            state.named_at[other] = left
            state.canonical[other] = next(reversed(left))
        else:
            del state.named_at[other], state.canonical[other]


def address(state: State, chat: str) -> str:
    """The id a send to ``chat`` goes to."""
    return state.last.get(chat, chat)


def destination(state: State, chat: str, owner_jid: str, owner_lid: str | None) -> str:
    """Where a message for ``chat`` goes: the id WhatsApp last used for it.

    The owner's own chat, never addressed yet, goes to the owner's LID when it
    is known: WhatsApp files note-to-self under the LID now.
    """
    to = address(state, chat)
    return owner_lid if to == owner_jid and owner_lid else to


def chat_of(state: State, jid: str) -> str | None:
    """The chat known under ``jid`` (itself an address or alternate id), if any."""
    return state.canonical.get(jid)


_HANDLERS: Handlers[State] = {
    MessageReceived: _received,
    ReplySent: _sent,
    Compacted: _compacted,
}
PROJECTION = Projection.of("addresses", State, _HANDLERS)
apply = PROJECTION.apply
