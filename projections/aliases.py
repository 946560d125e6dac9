"""Every form of a person's id (phone JID, ``@lid``, bare digits) mapped to one person.

The canonical id is the phone-number JID once one is known, else the form
seen first. Groups only grow by merging, so the state is bounded by the
number of people seen.
"""

from __future__ import annotations

import msgspec

from events.jid import PN_SERVER, InvalidJid, normalize
from events.model import MessageReceived, Recorded
from projections.base import Handlers, Projection, dispatcher

_PN_SUFFIX = "@" + PN_SERVER


class Person(msgspec.Struct, kw_only=True, gc=False):
    forms: list[str]
    since: int  # seq of the first sighting, to keep the older canonical on merges


class State(msgspec.Struct, kw_only=True):
    canonical: dict[str, str] = {}  # any form -> canonical id
    people: dict[str, Person] = {}  # canonical id -> person
    # linked form -> seq of the newest message that tied it to another form:
    # rotation keeps those, so no retention splits one person into two.
    taught: dict[str, int] = {}


def _is_phone(jid: str) -> bool:
    return jid.endswith(_PN_SUFFIX)


def _see(state: State, form: str, seq: int) -> str:
    canon = state.canonical.get(form)
    if canon is None:
        canon = state.canonical[form] = form
        state.people[form] = Person(forms=[form], since=seq)
    return canon


def _link(state: State, a: str, b: str, seq: int) -> None:
    ca, cb = _see(state, a, seq), _see(state, b, seq)
    if ca == cb:
        return
    pa, pb = state.people[ca], state.people[cb]
    # A phone JID outranks other forms; between equals the earlier sighting wins.
    if (not _is_phone(cb), pb.since) < (not _is_phone(ca), pa.since):
        ca, cb, pa, pb = cb, ca, pb, pa
    del state.people[cb]
    pa.forms.extend(pb.forms)
    pa.since = min(pa.since, pb.since)
    for form in pb.forms:
        state.canonical[form] = ca


def _received(state: State, rec: Recorded, ev: MessageReceived) -> None:
    sender = ev.sender
    known = state.canonical.get(sender)
    alt = ev.sender_alt
    if alt and alt != sender:
        if known is None or state.canonical.get(alt) != known:
            _link(state, sender, alt, rec.seq)
        state.taught[sender] = state.taught[alt] = rec.seq
    elif known is None:
        _see(state, sender, rec.seq)
    # In a direct chat the chat id is the peer's id, unless the owner wrote it.
    chat = ev.chat
    if not ev.is_group and not ev.from_me and chat != sender and chat:
        _link(state, chat, sender, rec.seq)
        state.taught[chat] = state.taught[sender] = rec.seq


def teachers(state: State) -> frozenset[int]:
    """The seqs of the messages that tie each known person's ids together."""
    return frozenset(state.taught.values())


def _lookup_form(jid: str) -> str:
    try:
        return normalize(jid)
    except InvalidJid:
        return jid


def canonical(state: State, jid: str) -> str:
    """The person's canonical id; an unknown id is its own (normalised) canonical."""
    form = _lookup_form(jid)
    return state.canonical.get(form, form)


def forms(state: State, jid: str) -> set[str]:
    """All known forms of the person, including ``jid`` itself (normalised)."""
    form = _lookup_form(jid)
    canon = state.canonical.get(form)
    if canon is None:
        return {form}
    return set(state.people[canon].forms)


_HANDLERS: Handlers[State] = {MessageReceived: _received}
apply = dispatcher(_HANDLERS)
PROJECTION = Projection("aliases", State, apply, _HANDLERS)
