"""Delivery truth over WhatsApp (issue 18, items 6 and 12): receipts as whatsmeow emits
them, through neonize's real dispatch, and replies sent with the chat's timer, as the
recording Go stand-in sees them."""

from __future__ import annotations

import tests.neonize_quiet  # noqa: F401  (first: see there)

# isort: split
from typing import Any

import pytest
from neonize.proto.Neonize_pb2 import MessageSource, Receipt
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message

from events.model import Quoted, ReceiptState, ReplyDelivered
from pipeline.transport import Outgoing
from tests.neonize_fakes import (
    ALICE,
    GROUP,
    LID,
    OWNER,
    dispatch,
    empty_jid,
    running,
)
from tests.neonize_fakes import _jid as jid

ALICE_JID = f"{ALICE}@s.whatsapp.net"
ALICE_LID = f"{LID}@lid"
STAMP = 1_764_070_200  # receipts carry unix seconds (neonize encodes time.Unix())


def receipt_ev(
    kind: int,
    ids: list[str],
    *,
    chat: str = ALICE_LID,
    sender: str | None = None,
    is_group: bool = False,
    from_me: bool = False,
) -> Any:
    """A ``ReceiptEv`` as neonize's encoder builds it from whatsmeow's ``events.Receipt``."""
    ev = Receipt(
        MessageSource=MessageSource(
            Chat=jid(chat),
            Sender=jid(sender or chat.replace("@", ":0@")),
            IsFromMe=from_me,
            IsGroup=is_group,
            AddressingMode="LID" if chat.endswith("@lid") else "PN",
            SenderAlt=jid(ALICE_JID if chat == ALICE_LID else ""),
            RecipientAlt=empty_jid(),
            BroadcastListOwner=empty_jid(),
        ),
        MessageIDs=ids,
        Timestamp=STAMP,
        Type=kind,
    )
    ev.SerializeToString()  # every required field is set
    return ev


def delivered(wa_id: str, state: ReceiptState, chat: str = ALICE_LID) -> ReplyDelivered:
    return ReplyDelivered(chat=chat, reply_id="", wa_id=wa_id, state=state, at=float(STAMP))


@pytest.mark.anyio
async def test_receipts_of_the_recipient_become_one_fact_per_message(make_transport: Any) -> None:
    async with running(*make_transport()) as session:
        await session.connected()
        # Android lists ids newest first; a group reports each participant apart.
        await dispatch(session.client, receipt_ev(Receipt.DELIVERED, ["3EB0B", "3EB0A"]))
        await dispatch(
            session.client,
            receipt_ev(Receipt.READ, ["3EB0G"], chat=GROUP, sender=ALICE_LID, is_group=True),
        )
        await dispatch(session.client, receipt_ev(Receipt.PLAYED, ["3EB0V"]))
        facts = [await session.next_fact() for _ in range(4)]

    assert facts == [
        delivered("3EB0B", "delivered"),
        delivered("3EB0A", "delivered"),
        delivered("3EB0G", "read", GROUP),
        delivered("3EB0V", "played"),
    ]


@pytest.mark.anyio
async def test_receipts_that_say_nothing_about_the_recipient_are_ignored(
    make_transport: Any,
) -> None:
    owner = f"{OWNER}@s.whatsapp.net"
    async with running(*make_transport()) as session:
        await session.connected()
        for kind in (Receipt.SENDER, Receipt.RETRY, Receipt.SERVER_ERROR, Receipt.INACTIVE,
                     Receipt.PEER_MSG, Receipt.HISTORY_SYNC):  # fmt: skip
            await dispatch(session.client, receipt_ev(kind, ["3EB0X"]))
        # The owner read a message on the phone: about the owner, not a recipient.
        await dispatch(session.client, receipt_ev(Receipt.READ_SELF, ["3EB0Y"], chat=owner))
        await dispatch(session.client, receipt_ev(Receipt.DELIVERED, ["3EB0END"]))
        fact = await session.next_fact()

    assert fact == delivered("3EB0END", "delivered")


@pytest.mark.anyio
async def test_a_reply_carries_the_chats_disappearing_timer(make_transport: Any) -> None:
    quoted = Quoted(id="3EB0Q", text="when?", sender=ALICE_LID)
    async with running(*make_transport()) as session:
        await session.connected()
        send = session.transport.send
        await send(Outgoing(to=ALICE_LID, text="Tomorrow @4917 at 9", expiration=604800))
        await send(Outgoing(to=GROUP, text="At 9", quoted=quoted, expiration=86400))
        await send(Outgoing(to=ALICE_LID, text="no timer", expiration=None))

    (_, timed), (_, quoting), (_, plain) = session.go.sent
    # A conversation has no contextInfo: the timer needs an extendedTextMessage.
    assert not timed.HasField("conversation")
    text = timed.extendedTextMessage
    assert text.text == "Tomorrow @4917 at 9"
    assert text.contextInfo.expiration == 604800
    assert list(text.contextInfo.mentionedJID) == []  # digits after @ stay text
    # When the setting changed is not known here; claiming one could change it.
    assert not text.contextInfo.HasField("ephemeralSettingTimestamp")
    assert not text.contextInfo.HasField("stanzaID")
    context = quoting.extendedTextMessage.contextInfo
    assert (context.expiration, context.stanzaID, context.participant) == (
        86400,
        "3EB0Q",
        ALICE_LID,
    )
    assert context.quotedMessage == Message(conversation="when?")
    assert plain == Message(conversation="no timer")
