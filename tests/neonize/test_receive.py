"""What WhatsApp sends, as the transport records it: real protos through neonize's dispatch.

Each test feeds a ``MessageEv`` in a shape whatsmeow really emits (LID
addressing with alternate ids, the owner's own messages, note-to-self,
broadcasts, edits plain and encrypted, revokes, wrappers already unwrapped,
reactions, media) through neonize's Go callback entry point.
"""

from __future__ import annotations

import tests.neonize_quiet  # noqa: F401  (first: see there)

# isort: split
import ctypes
import logging
import os
from typing import Any

import anyio
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from neonize.events import EVENT_TO_INT
from neonize.proto.Neonize_pb2 import Message as MessageEv
from neonize.proto.waCommon.WACommon_pb2 import MessageKey
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import (
    AudioMessage,
    ContextInfo,
    DocumentMessage,
    ExtendedTextMessage,
    ImageMessage,
    Message,
    MessageContextInfo,
    ProtocolMessage,
    ReactionMessage,
    StickerMessage,
)

from events.model import MessageEdited, MessageRevoked, Quoted
from pipeline.transport.neonize._secret import edit_key
from tests.inbound_shapes import META_AI, META_AI_BOT, nested_event
from tests.neonize_fakes import (
    ALICE,
    GROUP,
    LID,
    OWNER,
    OWNER_LID,
    device,
    dispatch,
    message_ev,
    received,
    running,
    secret_edit,
)

ALICE_JID = f"{ALICE}@s.whatsapp.net"
ALICE_LID = f"{LID}@lid"
OWNER_JID = f"{OWNER}@s.whatsapp.net"


@pytest.mark.anyio
async def test_a_direct_text_message(make_transport: Any) -> None:
    [event] = await received(make_transport, message_ev(Message(conversation="hi there")))

    assert event.chat == event.sender == ALICE_JID  # the sender's device (:3) is dropped
    assert (event.msg_id, event.text, event.kind) == ("3EB0AA", "hi there", "text")
    assert event.sent_at == pytest.approx(1_764_070_000.123)  # milliseconds -> seconds
    assert (event.push_name, event.sender_alt, event.from_me, event.is_group) == (
        "Alice",
        None,
        False,
        False,
    )


@pytest.mark.anyio
async def test_a_dm_addressed_by_lid_carries_the_phone_number_as_the_chats_other_id(
    make_transport: Any,
) -> None:
    ev = message_ev(
        Message(extendedTextMessage=ExtendedTextMessage(text="hallo")),
        chat=ALICE_LID,
        sender_alt=f"{ALICE}:3@s.whatsapp.net",  # whatsmeow copies the sender's device
    )
    [event] = await received(make_transport, ev)

    assert (event.chat, event.sender) == (ALICE_LID, ALICE_LID)
    assert event.sender_alt == event.chat_alt == ALICE_JID
    assert event.text == "hallo"


@pytest.mark.anyio
async def test_the_owner_typing_into_a_lid_dm_names_the_peer_by_recipient_alt(
    make_transport: Any,
) -> None:
    ev = message_ev(
        Message(conversation="I'll answer this one"),
        chat=ALICE_LID,
        sender=f"{OWNER_LID}:2@lid",
        recipient_alt=ALICE_JID,  # SenderAlt stays empty for the owner's own messages
        from_me=True,
    )
    [event] = await received(make_transport, ev)

    assert (event.chat, event.chat_alt, event.from_me) == (ALICE_LID, ALICE_JID, True)
    assert event.sender == f"{OWNER_LID}@lid"
    assert event.sender_alt is None


@pytest.mark.anyio
async def test_note_to_self_over_the_owners_lid(make_transport: Any) -> None:
    ev = message_ev(
        Message(conversation="remember the milk"),
        chat=f"{OWNER_LID}@lid",
        sender=f"{OWNER_LID}:2@lid",
        recipient_alt=OWNER_JID,
        from_me=True,
    )
    [event] = await received(make_transport, ev)

    assert (event.chat, event.chat_alt, event.from_me) == (f"{OWNER_LID}@lid", OWNER_JID, True)


@pytest.mark.anyio
async def test_a_group_mention_of_the_owners_lid_and_a_quote(make_transport: Any) -> None:
    text = ExtendedTextMessage(
        text=f"@{OWNER_LID} what do you think?",
        contextInfo=ContextInfo(
            stanzaID="3EB0QUOTED",
            participant=ALICE_LID,
            quotedMessage=Message(conversation="the plan"),
            mentionedJID=[f"{OWNER_LID}@lid", "bogus"],
        ),
    )
    ev = message_ev(
        Message(extendedTextMessage=text),
        chat=GROUP,
        sender=f"{LID}:7@lid",
        sender_alt="491702222222:7@s.whatsapp.net",
    )
    [event] = await received(make_transport, ev)

    assert (event.chat, event.is_group, event.chat_alt) == (GROUP, True, None)
    assert (event.sender, event.sender_alt) == (ALICE_LID, "491702222222@s.whatsapp.net")
    assert event.quoted == Quoted(id="3EB0QUOTED", text="the plan", sender=ALICE_LID)
    assert event.quoted_id == "3EB0QUOTED"
    assert event.mentions == [f"{OWNER_LID}@lid"]  # the unreadable one is left out


@pytest.mark.parametrize("chat", ["status@broadcast", "120363999999999999@newsletter"])
@pytest.mark.anyio
async def test_status_posts_and_newsletters_are_never_delivered(
    make_transport: Any, chat: str
) -> None:
    # A status post of a monitored contact: answering it would post a status.
    # (Her message to a broadcast list is her DM's: test_broadcast_lists.)
    ev = message_ev(
        Message(conversation="my holiday"),
        chat=chat,
        sender=f"{LID}:3@lid",
        sender_alt=ALICE_JID,
        is_group=True,  # whatsmeow runs broadcasts through its group branch
    )
    assert await received(make_transport, ev) == []


@pytest.mark.parametrize(("chat", "bot"), [(ALICE_LID, META_AI), (GROUP, META_AI_BOT)])
@pytest.mark.anyio
async def test_meta_ais_answer_in_a_chat_is_never_delivered_as_the_contacts(
    make_transport: Any, chat: str, bot: str
) -> None:
    """Someone asked ``@Meta AI`` there: whatsmeow files the answer under that chat, the
    bot as sender (``IsGroup`` unset even in a group). Answering it would have two AIs talk."""
    ev = message_ev(Message(conversation="Lisbon: 21 °C"), chat=chat, sender=bot, is_group=False)
    assert await received(make_transport, ev) == []


@pytest.mark.anyio
async def test_nothing_of_a_received_message_is_logged_even_at_debug(
    make_transport: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The transport cannot know if the chat is monitored: only the daemon may log it."""
    caplog.set_level(logging.DEBUG)
    stranger = "491709999999"
    chat = f"{stranger}@s.whatsapp.net"
    text = ExtendedTextMessage(
        text="zq-private-words", contextInfo=ContextInfo(mentionedJID=["491708888888@lid"])
    )
    reaction = ReactionMessage(key=MessageKey(ID="3EB0AA"), text="zq-reaction")
    edit = ProtocolMessage(
        key=MessageKey(remoteJID=chat, fromMe=False, ID="3EB0AA"),
        type=ProtocolMessage.MESSAGE_EDIT,
        editedMessage=Message(conversation="zq-edited-words"),
    )
    facts = await received(
        make_transport,
        message_ev(Message(reactionMessage=reaction), chat=chat),
        message_ev(Message(extendedTextMessage=text), chat=chat, push_name="Zebulon Quint"),
        message_ev(Message(protocolMessage=edit), chat=chat, msg_id="3EB0ED", edit="1"),
    )

    assert [getattr(f, "text", None) for f in facts][-2:] == ["zq-private-words", "zq-edited-words"]
    for secret in ("zq-private", "zq-reaction", "zq-edited", "Zebulon", stranger, "491708888888"):
        assert secret not in caplog.text


@pytest.mark.anyio
async def test_a_plain_edit_and_a_revoke(make_transport: Any) -> None:
    edit = message_ev(
        Message(
            protocolMessage=ProtocolMessage(
                key=MessageKey(remoteJID=ALICE_JID, fromMe=False, ID="3EB0ORIG"),
                type=ProtocolMessage.MESSAGE_EDIT,
                editedMessage=Message(conversation="the corrected text"),
                timestampMS=1_764_070_010_000,
            )
        ),
        msg_id="3EB0EDIT",
        edit="1",
    )
    revoke = message_ev(
        Message(
            protocolMessage=ProtocolMessage(
                key=MessageKey(remoteJID=ALICE_JID, fromMe=False, ID="3EB0GONE"),
                type=ProtocolMessage.REVOKE,
            )
        ),
        msg_id="3EB0REV",
        edit="7",
    )
    # REVOKE is 0, an unset type's default: a protocol message without one is nothing.
    untyped = message_ev(
        Message(protocolMessage=ProtocolMessage(key=MessageKey(ID="3EB0X"))), msg_id="U"
    )
    key_share = message_ev(
        Message(protocolMessage=ProtocolMessage(type=ProtocolMessage.APP_STATE_SYNC_KEY_SHARE)),
        msg_id="K",
    )

    facts = await received(make_transport, edit, untyped, key_share, revoke)

    assert facts == [
        MessageEdited(
            chat=ALICE_JID,
            msg_id="3EB0ORIG",
            text="the corrected text",
            edit_id="3EB0EDIT",
            editor=ALICE_JID,
        ),
        MessageRevoked(chat=ALICE_JID, msg_id="3EB0GONE"),
    ]


@pytest.mark.anyio
async def test_an_edit_encrypted_with_the_messages_secret_is_read(make_transport: Any) -> None:
    secret = os.urandom(32)
    original = message_ev(
        Message(
            conversation="teh first text",
            messageContextInfo=MessageContextInfo(messageSecret=secret),
        ),
        chat=ALICE_LID,
        sender=f"{LID}:3@lid",
        sender_alt=ALICE_JID,
        msg_id="3EB0ORIG",
    )
    # Keyed with the sender's phone JID although the chat is by LID: both forms are tried.
    edit = message_ev(
        secret_edit(secret, "the first text", sender=ALICE_JID, editor=ALICE_LID),
        chat=ALICE_LID,
        sender=f"{LID}:3@lid",
        msg_id="3EB0EDIT",
    )
    unknown = message_ev(
        secret_edit(os.urandom(32), "never seen", sender=ALICE_LID, editor=ALICE_LID),
        chat=ALICE_LID,
        sender=f"{LID}:3@lid",
        msg_id="3EB0EDIT2",
    )

    first, read, unreadable = await received(make_transport, original, edit, unknown)

    assert first.text == "teh first text"
    assert read == MessageEdited(
        chat=ALICE_LID,
        msg_id="3EB0ORIG",
        text="the first text",
        edit_id="3EB0EDIT",
        editor=ALICE_LID,
    )
    assert unreadable.text is None  # recorded as edited, content unknown


@pytest.mark.anyio
async def test_an_encrypted_edit_that_is_no_edit_is_recorded_unreadable(
    make_transport: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Anyone who got the original (every member of a group) knows its secret, so can
    send an 'edit' with an IV AES-GCM does not take, or one that decrypts to no message."""
    secret = os.urandom(32)
    original = message_ev(
        Message(
            conversation="the plan", messageContextInfo=MessageContextInfo(messageSecret=secret)
        ),
        msg_id="3EB0ORIG",
    )
    short_iv = secret_edit(secret, "x", sender=ALICE_JID, editor=ALICE_JID)
    short_iv.secretEncryptedMessage.encIV = b"\x01\x02"
    iv = os.urandom(12)
    key = edit_key(secret, "3EB0ORIG", ALICE_JID, ALICE_JID)
    no_message = secret_edit(secret, "x", sender=ALICE_JID, editor=ALICE_JID)
    no_message.secretEncryptedMessage.encIV = iv
    no_message.secretEncryptedMessage.encPayload = AESGCM(key).encrypt(iv, b"\xff\xff", None)
    edits = [message_ev(m, msg_id=f"3EB0EDIT{n}") for n, m in enumerate((short_iv, no_message))]

    _, *facts = await received(make_transport, original, *edits)

    assert [(type(f), f.msg_id, f.edit_id, f.text) for f in facts] == [
        (MessageEdited, "3EB0ORIG", "3EB0EDIT0", None),
        (MessageEdited, "3EB0ORIG", "3EB0EDIT1", None),
    ]
    assert "cannot read" not in caplog.text


@pytest.mark.anyio
async def test_an_edit_names_who_sent_it_not_whose_message_it_names(
    make_transport: Any,
) -> None:
    """Bob's client keys an edit to Alice's message (``participant`` Alice), plain and
    encrypted with her message's secret (every member has it): each is recorded as
    Bob's edit. The owner's own edit is the owner's (``from_me``)."""
    secret = os.urandom(32)
    bob_jid, bob_lid = "491702222222@s.whatsapp.net", "555555555555555@lid"
    bob: dict[str, Any] = {"chat": GROUP, "sender": "555555555555555:1@lid", "sender_alt": bob_jid}
    alices = message_ev(
        Message(
            conversation="transfer 10 EUR to Carol",
            messageContextInfo=MessageContextInfo(messageSecret=secret),
        ),
        chat=GROUP,
        sender=f"{LID}:3@lid",
        sender_alt=ALICE_JID,
        msg_id="3EB0ORIG",
    )
    key = MessageKey(remoteJID=GROUP, fromMe=False, ID="3EB0ORIG", participant=ALICE_LID)
    forged = ProtocolMessage(
        key=key,
        type=ProtocolMessage.MESSAGE_EDIT,
        editedMessage=Message(conversation="transfer 1000 EUR to Bob"),
    )
    plain = message_ev(
        Message(protocolMessage=forged), **bob, push_name="Bob", msg_id="3EB0BOB1", edit="1"
    )
    # Keyed as if Alice edited: the transport finds the key, and still names Bob.
    encrypted = message_ev(
        secret_edit(secret, "transfer 2000 EUR to Bob", sender=ALICE_LID, editor=ALICE_LID),
        **bob,
        push_name="Bob",
        msg_id="3EB0BOB2",
    )
    own = message_ev(
        Message(
            protocolMessage=ProtocolMessage(
                key=MessageKey(remoteJID=ALICE_LID, fromMe=True, ID="3EB0MINE"),
                type=ProtocolMessage.MESSAGE_EDIT,
                editedMessage=Message(conversation="see you at 8"),
            )
        ),
        chat=ALICE_LID,
        sender=f"{OWNER_LID}:2@lid",
        recipient_alt=ALICE_JID,
        from_me=True,
        msg_id="3EB0OWN",
        edit="1",
    )

    original, *edits = await received(make_transport, alices, plain, encrypted, own)

    assert (original.sender, original.sender_alt) == (ALICE_LID, ALICE_JID)
    assert [(e.msg_id, e.text, e.editor, e.editor_alt, e.from_me) for e in edits] == [
        ("3EB0ORIG", "transfer 1000 EUR to Bob", bob_lid, bob_jid, False),
        ("3EB0ORIG", "transfer 2000 EUR to Bob", bob_lid, bob_jid, False),
        ("3EB0MINE", "see you at 8", f"{OWNER_LID}@lid", None, True),
    ]
    assert not any(e.by_author(original.sender, original.sender_alt, False) for e in edits[:2])


@pytest.mark.anyio
async def test_wrappers_reactions_and_media(make_transport: Any) -> None:
    reaction = ReactionMessage(key=MessageKey(ID="3EB0AA"), text="👍")
    events = [
        message_ev(Message(reactionMessage=reaction), msg_id="R"),
        # whatsmeow unwraps view-once and disappearing messages and sets flags.
        message_ev(
            Message(imageMessage=ImageMessage(caption="our trip")), msg_id="I", view_once=True
        ),
        message_ev(Message(conversation="vanishing"), msg_id="E", ephemeral=True),
        message_ev(Message(extendedTextMessage=ExtendedTextMessage()), msg_id="EMPTY"),
        message_ev(Message(stickerMessage=StickerMessage()), msg_id="S"),
        message_ev(Message(imageMessage=ImageMessage()), msg_id="NOCAP"),
        message_ev(Message(audioMessage=AudioMessage(PTT=True, seconds=7)), msg_id="V"),
        message_ev(
            Message(documentMessage=DocumentMessage(fileName="x.pdf", caption="the contract")),
            msg_id="D",
        ),
    ]
    facts = await received(make_transport, *events)

    assert [(f.msg_id, f.kind, f.text) for f in facts] == [
        ("I", "image", "our trip"),
        ("E", "text", "vanishing"),
        ("S", "sticker", ""),
        ("NOCAP", "image", ""),
        ("V", "audio", ""),
        ("D", "document", "the contract"),
    ]


@pytest.mark.anyio
async def test_messages_are_delivered_in_arrival_order(make_transport: Any) -> None:
    ids = [f"M{n:02d}" for n in range(30)]
    facts = await received(
        make_transport, *(message_ev(Message(conversation="x"), msg_id=i) for i in ids)
    )
    assert [f.msg_id for f in facts] == ids


@pytest.mark.anyio
async def test_connected_reports_the_owners_phone_jid_and_lid(make_transport: Any) -> None:
    async with running(*make_transport()) as session:
        status = await session.connected(device(OWNER, OWNER_LID))

    assert (status.me_pn, status.me_lid) == (OWNER_JID, f"{OWNER_LID}@lid")


@pytest.mark.anyio
async def test_a_store_without_a_lid_reports_only_the_phone_jid(make_transport: Any) -> None:
    async with running(*make_transport()) as session:
        status = await session.connected(device(OWNER, None))

    assert (status.me_pn, status.me_lid) == (OWNER_JID, None)


@pytest.mark.anyio
async def test_a_message_nested_ten_thousand_deep_costs_nothing_but_itself(
    make_transport: Any,
) -> None:
    """neonize's parser refuses it before any handler runs; the next message still comes."""
    raw = nested_event(10_000)
    async with running(*make_transport()) as session:
        await session.connected()
        buffer = ctypes.create_string_buffer(raw, len(raw))
        code = EVENT_TO_INT[MessageEv]
        with pytest.raises(Exception, match="MaxDepth"):
            await anyio.to_thread.run_sync(
                session.client.event.execute, 0, ctypes.addressof(buffer), len(raw), code
            )
        await dispatch(session.client, message_ev(Message(conversation="still here")))
        fact = await session.next_message()

    assert fact.text == "still here"
