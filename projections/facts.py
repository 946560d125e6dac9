"""The facts the model keeps about each chat (tools ``remember``, ``forget_fact``).

Facts are filed under the chat the tool was called in; a person who writes
from a phone JID and from an ``@lid`` is one person, so ``of_person`` reads the
facts of all their forms (``projections.aliases.forms``), oldest first. A fact
lives from its ``FactRemembered`` until a ``FactForgotten`` of its chat names
it (asked, or the oldest over the bound). A rotation keeps the live facts'
events (``kept``); ``forget --chat`` removes the chat's, and a ``Compacted``
that removed a ``FactRemembered`` drops its fact, as a fold of what is left would.
"""

from __future__ import annotations

from collections.abc import Collection

import msgspec

from events.model import Compacted, FactForgotten, FactRemembered, Recorded
from projections import aliases
from projections.base import Handlers, Projection, removal


class Fact(msgspec.Struct, kw_only=True, gc=False):
    text: str
    chat: str  # the chat it is filed under
    seq: int  # its FactRemembered's
    ts: float


class State(msgspec.Struct, kw_only=True):
    chats: dict[str, list[Fact]] = {}  # chat -> its live facts, oldest first


def _remembered(state: State, rec: Recorded, ev: FactRemembered) -> None:
    fact = Fact(text=ev.fact, chat=ev.chat, seq=rec.seq, ts=rec.ts)
    state.chats.setdefault(ev.chat, []).append(fact)


def _forgotten(state: State, rec: Recorded, ev: FactForgotten) -> None:
    known = state.chats.get(ev.chat)
    if known is None:
        return
    going = set(ev.facts)
    left = [f for f in known if f.text not in going]
    if left:
        state.chats[ev.chat] = left
    else:
        del state.chats[ev.chat]


def _compacted(state: State, rec: Recorded, ev: Compacted) -> None:
    gone = removal(ev)
    if gone is None:
        return
    for chat, known in list(state.chats.items()):
        left = [f for f in known if not gone.gone(f.seq, f.ts, chat)]
        if left:
            state.chats[chat] = left
        else:
            del state.chats[chat]


def of_person(state: State, forms: Collection[str]) -> list[Fact]:
    """The live facts of every chat in ``forms`` (one person's ids), oldest first."""
    found = [fact for chat in forms for fact in state.chats.get(chat, ())]
    return sorted(found, key=lambda f: f.seq)


def of_chat(state: State, people: aliases.State, chat: str) -> list[str]:
    """The words of ``chat``'s facts under every id it goes by, oldest first: what its
    system prompt carries under ``Facts:``."""
    forms = aliases.forms(people, chat) | {chat}
    return [fact.text for fact in of_person(state, forms)]


def kept(state: State) -> frozenset[int]:
    """The ``FactRemembered`` events a rotation must keep: the live facts'."""
    return frozenset(f.seq for known in state.chats.values() for f in known)


_HANDLERS: Handlers[State] = {
    FactRemembered: _remembered,
    FactForgotten: _forgotten,
    Compacted: _compacted,
}
PROJECTION = Projection.of("facts", State, _HANDLERS)
apply = PROJECTION.apply
