"""Where to send to a chat: the id WhatsApp last used for it.

A contact monitored by phone number is mostly addressed by LID now, and a send
to the phone JID of a LID-migrated account may never arrive; so replies go to
the id the chat's last message came by (``MessageReceived.via``), or the id a
send was actually delivered to (``ReplySent.to``). ``canonical`` maps those ids
back to the chat, for events (edits, revokes) that name only the id.
"""

from __future__ import annotations

import msgspec

from events.model import MessageReceived, Recorded, ReplySent
from projections.base import Handlers, Projection, dispatcher


class State(msgspec.Struct, kw_only=True):
    last: dict[str, str] = {}  # chat -> the id to send to, when not the chat itself
    canonical: dict[str, str] = {}  # any id seen for a chat -> the chat


def _use(state: State, chat: str, address: str | None) -> None:
    if not address or address == chat:
        state.last.pop(chat, None)
        return
    state.last[chat] = address
    state.canonical[address] = chat


def _received(state: State, rec: Recorded, ev: MessageReceived) -> None:
    # The owner's own messages count too: WhatsApp files them under the chat's id.
    _use(state, ev.chat, ev.via)
    for other in (ev.via, ev.chat_alt):
        if other and other != ev.chat:
            state.canonical[other] = ev.chat


def _sent(state: State, rec: Recorded, ev: ReplySent) -> None:
    if ev.to:
        _use(state, ev.chat, ev.to)


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


_HANDLERS: Handlers[State] = {MessageReceived: _received, ReplySent: _sent}
apply = dispatcher(_HANDLERS)
PROJECTION = Projection("addresses", State, apply, _HANDLERS)
