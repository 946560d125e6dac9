"""A LID-addressed message without the phone number (issue 18.1, whatsmeow #1014),
through the neonize transport with real protos: whatsmeow's LID store is asked
(only then, and never for long), and the daemon files it by what it learnt."""

from __future__ import annotations

import tests.neonize_quiet  # noqa: F401  (first: see there)

# isort: split
from pathlib import Path
from typing import Any

import pytest
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message, MessageContextInfo

from events.model import MessageReceived, MessageSkipped, MessageUndecryptable
from pipeline.transport.neonize import _transport as transport_module
from tests.inbound_shapes import undecryptable
from tests.neonize_fakes import ALICE, LID, OWNER, dispatch, message_ev, received
from tests.neonize_wired import loaded, wired

pytestmark = pytest.mark.anyio
ALICE_JID = f"{ALICE}@s.whatsapp.net"
ALICE_LID = f"{LID}@lid"
OWNER_JID = f"{OWNER}@s.whatsapp.net"


def by_lid(msg_id: str, words: str = "hallo", **fields: Any) -> Any:
    """A DM by LID with SenderAlt empty, as WhatsApp sends it for some contacts."""
    fields.setdefault("chat", ALICE_LID)
    fields.setdefault("sender", fields["chat"].replace("@", ":3@"))
    return message_ev(Message(conversation=words), msg_id=msg_id, **fields)


def knowing(make_transport: Any, **lids: str) -> Any:
    """A transport factory whose Go stand-in's LID store holds ``lids``."""

    def make() -> Any:
        transport, go = make_transport()
        go.lid_map.update(lids)
        made.append(go)
        return transport, go

    made: list[Any] = []
    make.go = made  # type: ignore[attr-defined]
    return make


async def test_the_phone_number_comes_from_whatsmeows_lid_store(make_transport: Any) -> None:
    make = knowing(make_transport, **{LID: ALICE})
    [event] = await received(make, by_lid("L1"))

    assert (event.chat, event.sender) == (ALICE_LID, ALICE_LID)
    assert event.chat_alt == event.sender_alt == ALICE_JID
    assert make.go[0].lid_lookups == [LID]


async def test_the_owners_own_message_there_names_the_peer(make_transport: Any) -> None:
    make = knowing(make_transport, **{LID: ALICE})
    own = by_lid("O1", sender=f"{OWNER}:12@s.whatsapp.net", from_me=True)
    [event] = await received(make, own)

    assert event.from_me
    assert event.chat_alt == ALICE_JID
    assert event.sender_alt is None  # the sender is the owner, not the peer


async def test_the_store_is_asked_only_when_the_number_is_missing(make_transport: Any) -> None:
    make = knowing(make_transport, **{LID: ALICE})
    sent_along = by_lid("L1", sender_alt=f"{ALICE}:3@s.whatsapp.net")
    by_phone = message_ev(Message(conversation="hi"), msg_id="P1")
    await received(make, sent_along, by_phone)

    assert make.go[0].lid_lookups == []


async def test_a_lid_the_store_does_not_know_comes_as_it_is(make_transport: Any) -> None:
    make = knowing(make_transport)
    [event] = await received(make, by_lid("L1"))

    assert (event.chat, event.chat_alt, event.sender_alt) == (ALICE_LID, None, None)


async def test_a_lookup_that_hangs_costs_a_bounded_wait(
    make_transport: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transport_module, "_LID_WAIT", 0.05)

    def make() -> Any:
        transport, go = make_transport()
        go.lid_hang = True
        return transport, go

    [event] = await received(make, by_lid("L1"))

    assert event.chat_alt is None


async def test_the_daemon_files_it_under_the_monitored_number(tmp_path: Path) -> None:
    async with wired(tmp_path) as w:
        w.go.lid_map[LID] = ALICE
        await dispatch(w.client, by_lid("L1"))
        await dispatch(w.client, by_lid("O1", sender=f"{OWNER}:12@s.whatsapp.net", from_me=True))
        messages = [r.event for r in w.log.read() if isinstance(r.event, MessageReceived)]

    assert [(m.msg_id, m.chat, m.via, m.from_me) for m in messages] == [
        ("L1", ALICE_JID, ALICE_LID, False),
        ("O1", ALICE_JID, ALICE_LID, True),
    ]


async def test_a_view_once_placeholder_is_filed_by_the_store_as_a_message_would_be(
    tmp_path: Path,
) -> None:
    """WhatsApp sends a linked device no copy of view-once media: the placeholder comes
    by LID without the number like any message, and is filed the same way."""
    async with wired(tmp_path) as w:
        w.go.lid_map[LID] = ALICE
        await dispatch(w.client, undecryptable(unavailable=True, chat=ALICE_LID))
        [placeholder] = [r.event for r in w.log.read() if isinstance(r.event, MessageUndecryptable)]

    assert (placeholder.chat, placeholder.via) == (ALICE_JID, ALICE_LID)
    assert (placeholder.sender, placeholder.sender_alt) == (ALICE_LID, ALICE_JID)


async def test_the_daemon_files_it_by_an_earlier_message_when_the_store_is_silent(
    tmp_path: Path,
) -> None:
    alice = {"type": "user", "phone": ALICE, "name": "Alice"}
    bob = {"type": "user", "phone": "491702222222", "name": "Bob"}  # his LID not known yet
    async with wired(tmp_path, config=loaded(alice, bob)) as w:
        await dispatch(w.client, by_lid("L1", sender_alt=f"{ALICE}:3@s.whatsapp.net"))
        await dispatch(w.client, by_lid("L2"))  # the store knows nothing (lid_map empty)
        await dispatch(w.client, by_lid("X1", chat="555555555555555@lid"))
        recorded = [r.event for r in w.log.read()]
    messages = [e for e in recorded if isinstance(e, MessageReceived)]
    assert [(m.msg_id, m.chat) for m in messages] == [("L1", ALICE_JID), ("L2", ALICE_JID)]
    [skip] = [e for e in recorded if isinstance(e, MessageSkipped)]
    assert (skip.chat, skip.msg_id, skip.reason) == ("555555555555555@lid", "X1", "unresolved_lid")


async def test_once_every_monitored_lid_is_known_an_unknown_one_leaves_nothing(
    tmp_path: Path,
) -> None:
    async with wired(tmp_path) as w:  # Alice alone
        await dispatch(w.client, by_lid("L1", sender_alt=f"{ALICE}:3@s.whatsapp.net"))
        await dispatch(w.client, by_lid("X1", chat="555555555555555@lid"))
        assert [r.chat for r in w.log.read() if r.chat.endswith("@lid")] == []
        assert w.intake.dropped == 1


async def test_an_unresolved_lid_is_never_kept_beyond_its_trace(tmp_path: Path) -> None:
    """No secret of it, no capture of it: it may be nobody's we watch."""
    capture = tmp_path / "capture"
    bob = {"type": "user", "phone": "491702222222", "name": "Bob"}  # his LID not known yet
    store = tmp_path / "store"
    store.mkdir()
    async with wired(store, config=loaded(bob), capture=capture) as w:
        secret = MessageContextInfo(messageSecret=b"s" * 32)
        message = Message(conversation="x", messageContextInfo=secret)
        lost = message_ev(message, chat="555555555555555@lid", sender="555555555555555:3@lid")
        await dispatch(w.client, lost)
        assert [r.event.reason for r in w.log.read() if isinstance(r.event, MessageSkipped)] == [
            "unresolved_lid"
        ]

    assert not capture.exists()
    assert not (tmp_path / "store" / "edit-secrets.jsonl").exists()
