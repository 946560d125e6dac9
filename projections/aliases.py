"""Every form of a person's id (phone JID, ``@lid``, bare digits) mapped to one person.

The canonical id is the phone-number JID once one is known, else the least
form (so it depends on the forms alone, not on the order they were seen).
The state is bounded by the number of people seen and the chats they wrote in
within the retention, and by the people the bot serves (``teachers``).

Each form and each link between two forms keeps its evidence: per chat, the
newest message that showed it. A ``Compacted`` drops the evidence that went
and regroups the people from what is left, so a forgotten chat's links go
with it, while a link shown by a message that stays (another chat, a newer
message, an event a rotation keeps) survives.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

import msgspec

from events.jid import PN_SERVER, InvalidJid, normalize
from events.model import Compacted, MessageReceived, Recorded
from events.protocol import Removal
from projections.base import Handlers, Projection, removal

_PN_SUFFIX = "@" + PN_SERVER


class Person(msgspec.Struct, kw_only=True, gc=False):
    forms: list[str]  # sorted


# The evidence for a form or a link: per chat, the newest message that showed it.
Evidence = dict[str, tuple[int, float]]


class State(msgspec.Struct, kw_only=True):
    canonical: dict[str, str] = {}  # any form -> canonical id
    people: dict[str, Person] = {}  # canonical id -> person
    seen: dict[str, Evidence] = {}  # form -> where it wrote last
    links: dict[str, Evidence] = {}  # "a b" (a < b) -> where the two were last tied


def _rank(form: str) -> tuple[bool, str]:
    """A phone JID outranks other forms; between equals the least one wins."""
    return (not form.endswith(_PN_SUFFIX), form)


def _see(state: State, form: str) -> str:
    canon = state.canonical.get(form)
    if canon is None:
        canon = state.canonical[form] = form
        state.people[form] = Person(forms=[form])
    return canon


def _join(state: State, a: str, b: str) -> None:
    ca, cb = _see(state, a), _see(state, b)
    if ca == cb:
        return
    if _rank(cb) < _rank(ca):
        ca, cb = cb, ca
    pa, pb = state.people[ca], state.people.pop(cb)
    pa.forms = sorted(pa.forms + pb.forms)
    for form in pb.forms:
        state.canonical[form] = ca


def _link(state: State, a: str, b: str, chat: str, at: tuple[int, float]) -> None:
    key = f"{a} {b}" if a < b else f"{b} {a}"
    evidence = state.links.get(key)
    if evidence is None:
        evidence = state.links[key] = {}
    evidence[chat] = at
    _join(state, a, b)


def _received(state: State, rec: Recorded, ev: MessageReceived) -> None:
    sender = ev.sender
    chat = ev.chat
    evidence = state.seen.get(sender)
    if evidence is None:
        evidence = state.seen[sender] = {}
        _see(state, sender)
    at = evidence[chat] = (rec.seq, rec.ts)
    alt = ev.sender_alt
    if alt and alt != sender:
        _link(state, sender, alt, chat, at)
    # In a direct chat the chat id is the peer's id, unless the owner wrote it.
    if not ev.is_group and not ev.from_me and chat != sender and chat:
        _link(state, chat, sender, chat, at)


def _compacted(state: State, rec: Recorded, ev: Compacted) -> None:
    """Forget what only removed messages showed, then regroup from the evidence left."""
    gone = removal(ev)
    if gone is None:
        return
    state.seen = _surviving(state.seen, gone)
    state.links = _surviving(state.links, gone)
    state.canonical, state.people = {}, {}
    for form in state.seen:
        _see(state, form)
    for key in state.links:
        a, b = key.split(" ", 1)
        _join(state, a, b)


def _surviving(evidence: dict[str, Evidence], gone: Removal) -> dict[str, Evidence]:
    left = {}
    for key, chats in evidence.items():
        kept = {chat: at for chat, at in chats.items() if not gone.gone(at[0], at[1], chat)}
        if kept:
            left[key] = kept
    return left


def teachers(state: State, people: Collection[str] | None = None) -> frozenset[int]:
    """The seqs of the messages that tie the ids of ``people`` together (any id of each
    will do; None: everyone's): rotation keeps them, so no retention splits one of them
    into two chats.

    A rotation names the persons the bot serves; the ties of anyone else (a group's
    members, a contact no longer monitored) go with the retention like their other
    messages: kept, they would pile up for every member ever seen. Such a person is
    tied again by their next message that names both ids.
    """
    if people is None:
        return frozenset(seq for chats in state.links.values() for seq, _ in chats.values())
    served = {canonical(state, jid) for jid in people}
    return frozenset(
        seq
        for key, chats in state.links.items()
        if state.canonical[key.partition(" ")[0]] in served
        for seq, _ in chats.values()
    )


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


def named_by(state: State, messages: Iterable[MessageReceived]) -> dict[str, list[str]]:
    """Every known form of each id ``messages`` name (their senders' ids and the
    mentioned), so a message is matched to one of them whichever id it came under."""
    known: dict[str, list[str]] = {}
    for m in messages:
        for jid in (m.sender, m.sender_alt, *m.mentions):
            if jid and jid not in known:
                known[jid] = sorted(forms(state, jid))
    return known


_HANDLERS: Handlers[State] = {MessageReceived: _received, Compacted: _compacted}
PROJECTION = Projection.of("aliases", State, _HANDLERS)
apply = PROJECTION.apply
