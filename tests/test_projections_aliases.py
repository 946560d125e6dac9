"""Aliases: every id form of a person resolves to one canonical id."""

from typing import Any

from events.compaction import removed
from events.model import AnyEvent, MessageReceived, Recorded
from events.protocol import Selection
from projections import aliases
from projections.fold import fold

PN = "491701111111@s.whatsapp.net"
LID = "987654321@lid"
LID2 = "555555@lid"
GROUP = "120363000000000000@g.us"
OWNER = "491700000000@s.whatsapp.net"


def folded(*events: AnyEvent) -> aliases.State:
    records = [Recorded(i, 1000.0 + i, e) for i, e in enumerate(events, 1)]
    return fold(records, [aliases.PROJECTION]).aliases


def msg(chat: str, sender: str, alt: str | None = None, **kw: Any) -> MessageReceived:
    return MessageReceived(chat=chat, msg_id="m", sender=sender, sender_alt=alt, **kw)


def test_pn_lid_and_bare_digits_are_one_person():
    state = folded(msg(GROUP, LID, PN, is_group=True))
    for form in (PN, LID, "491701111111", "+49 170 1111111", "491701111111:3@s.whatsapp.net"):
        assert aliases.canonical(state, form) == PN
    assert aliases.forms(state, "491701111111") == {PN, LID}


def test_phone_jid_becomes_canonical_when_learnt_later():
    state = folded(msg(GROUP, LID, is_group=True), msg(GROUP, LID2, is_group=True))
    assert aliases.canonical(state, LID) == LID
    state = folded(
        msg(GROUP, LID, is_group=True), msg(GROUP, LID2, LID, is_group=True), msg(LID, LID, PN)
    )
    assert aliases.canonical(state, LID2) == PN
    assert aliases.forms(state, LID2) == {PN, LID, LID2}


def test_without_a_phone_jid_the_least_form_is_canonical():
    state = folded(msg(GROUP, LID2, is_group=True), msg(GROUP, LID, LID2, is_group=True))
    assert aliases.canonical(state, LID) == LID2


def test_direct_chat_id_is_the_peer():
    state = folded(msg(LID, PN))
    assert aliases.canonical(state, LID) == PN


def test_owner_writing_in_a_direct_chat_is_not_the_peer():
    state = folded(msg(PN, OWNER, from_me=True), msg(GROUP, LID, is_group=True))
    assert aliases.canonical(state, OWNER) == OWNER
    assert aliases.forms(state, PN) == {PN}
    assert aliases.canonical(state, GROUP) == GROUP


def test_unknown_and_invalid_ids_are_their_own():
    state = folded()
    assert aliases.canonical(state, "4917099") == "4917099@s.whatsapp.net"
    assert aliases.forms(state, "not a jid") == {"not a jid"}


def test_without_a_phone_jid_the_order_seen_does_not_matter():
    one = folded(msg(GROUP, LID, is_group=True), msg(GROUP, LID2, LID, is_group=True))
    other = folded(msg(GROUP, LID2, is_group=True), msg(GROUP, LID, LID2, is_group=True))
    assert aliases.canonical(one, LID) == aliases.canonical(other, LID) == LID2


def forget(state_events: list[AnyEvent], chat: str) -> aliases.State:
    """Fold ``state_events``, then a forget of ``chat`` (absorbed, not refolded)."""
    records = [Recorded(i, 1000.0 + i, e) for i, e in enumerate(state_events, 1)]
    gone = [r for r in records if r.chat == chat]
    marker = removed(
        Selection(chats=frozenset({chat})),
        "forget",
        [(r.seq, type(r.event).__name__, r.chat) for r in gone],
    )
    assert marker is not None
    records.append(Recorded(len(records) + 1, 2000.0, marker))
    return fold(records, [aliases.PROJECTION]).aliases


def test_forgetting_a_chat_drops_the_links_only_it_showed():
    events: list[AnyEvent] = [msg(GROUP, LID, PN, is_group=True), msg(LID2, LID2)]
    state = forget(events, GROUP)
    assert aliases.canonical(state, LID) == LID  # only the group tied it to the phone
    assert aliases.forms(state, PN) == {PN}
    assert aliases.canonical(state, LID2) == LID2


def test_a_link_another_chat_showed_survives_a_forget():
    events: list[AnyEvent] = [msg(GROUP, LID, PN, is_group=True), msg(PN, PN, LID)]
    state = forget(events, GROUP)
    assert aliases.canonical(state, LID) == PN
    assert aliases.forms(state, LID) == {PN, LID}
