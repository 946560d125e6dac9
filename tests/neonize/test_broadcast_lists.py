"""A contact's message to a broadcast list the owner is on, from real protos through
neonize's callback into the daemon's intake, a real log, the turn and a send.

whatsmeow delivers it under the list (``<id>@broadcast``, ``IsGroup`` true, the
contact in ``Sender``, ``SenderAlt`` often empty: whatsmeow #1262); WhatsApp's
apps show it in the 1:1 chat with the contact. So the bot files and answers it
there, as a DM from them; nothing is stored or sent under the list's id, and
the owner's own list posts stay no chat (docs/whatsapp.md).
"""

from __future__ import annotations

import tests.neonize_quiet  # noqa: F401  (first: see there)

# isort: split
import itertools
import os
import time
from pathlib import Path
from typing import Any

import pytest
from neonize.proto.Neonize_pb2 import Connected
from neonize.proto.waCommon.WACommon_pb2 import MessageKey
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import (
    ContextInfo,
    ExtendedTextMessage,
    Message,
    MessageContextInfo,
    ProtocolMessage,
)

from events.model import (
    MessageEdited,
    MessageReceived,
    MessageRevoked,
    MessageUndecryptable,
    Recorded,
    ReplyPlanned,
    TransportStatus,
    Usage,
)
from pipeline.daemon import Sender, Settings
from pipeline.daemon import _turn as turn
from pipeline.daemon._replies import Ids
from pipeline.llm import LlmResult
from tests.e2e.harness import iter_store_files
from tests.inbound_shapes import undecryptable
from tests.neonize_fakes import ALICE, LID, OWNER, dispatch, message_ev, received, secret_edit
from tests.neonize_wired import Wired, loaded, wired

pytestmark = pytest.mark.anyio
ALICE_JID = f"{ALICE}@s.whatsapp.net"
ALICE_LID = f"{LID}@lid"
LIST = "1764070000@broadcast"
WEEK = 604_800
# How whatsmeow names the list's sender (Sender, SenderAlt), and the id of the 1:1
# chat the message then belongs to (where the reply goes). The LID alone: the
# phone number is in whatsmeow's LID store, as the tests set it up.
SENDERS = {
    "phone": ((f"{ALICE}:3@s.whatsapp.net", ""), ALICE_JID),
    "lid_and_phone": ((f"{LID}:3@lid", f"{ALICE}:3@s.whatsapp.net"), ALICE_LID),
    "lid_alone": ((f"{LID}:3@lid", ""), ALICE_LID),
}


def to_list(message: Any, msg_id: str, sender: tuple[str, str], **fields: Any) -> Any:
    """Alice's message to a broadcast list the owner is on, sent moments ago."""
    return message_ev(
        message,
        chat=LIST,
        sender=sender[0],
        sender_alt=sender[1],
        is_group=True,  # whatsmeow runs @broadcast chats through its group branch
        msg_id=msg_id,
        timestamp_ms=int(time.time() * 1000),
        **fields,
    )


def knowing_alice(make_transport: Any) -> Any:
    """A transport factory whose whatsmeow LID store knows Alice's number."""

    def make() -> Any:
        transport, go = make_transport()
        go.lid_map[LID] = ALICE
        return transport, go

    return make


@pytest.mark.parametrize("name", SENDERS)
async def test_it_is_delivered_as_a_message_of_the_senders_chat(
    make_transport: Any, name: str
) -> None:
    sender, chat = SENDERS[name]
    # A list message carries the sender's timer for the list, not for the 1:1 chat.
    words = ExtendedTextMessage(text="to all", contextInfo=ContextInfo(expiration=WEEK))
    [fact] = await received(
        knowing_alice(make_transport),
        to_list(Message(extendedTextMessage=words), "3EB0L1", sender),
    )

    assert isinstance(fact, MessageReceived)
    assert (fact.chat, fact.is_group, fact.from_me, fact.text) == (chat, False, False, "to all")
    assert fact.sender == chat
    assert fact.chat_alt == (ALICE_JID if chat == ALICE_LID else None)
    assert fact.expiration is None  # says nothing of the 1:1 chat's timer


async def test_the_owners_own_list_post_and_a_lists_timer_are_never_delivered(
    make_transport: Any,
) -> None:
    own = message_ev(
        Message(conversation="to all of you"),
        chat=LIST,
        sender=f"{OWNER}:12@s.whatsapp.net",
        from_me=True,
        msg_id="3EB0OWN",
    )
    timer = to_list(
        Message(
            protocolMessage=ProtocolMessage(
                type=ProtocolMessage.EPHEMERAL_SETTING, ephemeralExpiration=WEEK
            )
        ),
        "3EB0T",
        SENDERS["phone"][0],
    )
    assert await received(make_transport, own, timer) == []


@pytest.mark.parametrize("name", SENDERS)
async def test_it_is_recorded_in_her_chat_and_answered_there(tmp_path: Path, name: str) -> None:
    sender, via = SENDERS[name]
    async with wired(tmp_path) as w:
        w.go.lid_map[LID] = ALICE
        await dispatch(w.client, Connected(status=True))
        question = Message(conversation="Capital of Peru?")
        await dispatch(w.client, to_list(question, "3EB0L1", sender))
        [message] = [r.event for r in w.log.read() if isinstance(r.event, MessageReceived)]
        assert (message.chat, message.via, message.is_group) == (
            ALICE_JID,
            None if via == ALICE_JID else via,
            False,
        )

        reply, to = await answered_and_sent(w)
        records = list(w.log.read())

    assert (reply.chat, reply.in_reply_to) == (ALICE_JID, "3EB0L1")
    assert f"{to.User}@{to.Server}" == via  # her chat, by the id she wrote from
    assert_no_list_anywhere(records, tmp_path)


async def test_its_edits_and_revoke_find_it_in_her_chat(tmp_path: Path) -> None:
    sender = SENDERS["lid_and_phone"][0]
    secret = os.urandom(32)
    original = Message(
        conversation="teh plan", messageContextInfo=MessageContextInfo(messageSecret=secret)
    )
    edit = ProtocolMessage(
        key=MessageKey(remoteJID=LIST, fromMe=False, ID="3EB0ORIG"),
        type=ProtocolMessage.MESSAGE_EDIT,
        editedMessage=Message(conversation="the plan"),
    )
    encrypted = secret_edit(secret, "the plan!", sender=ALICE_LID, editor=ALICE_LID)
    revoke = ProtocolMessage(
        key=MessageKey(remoteJID=LIST, fromMe=False, ID="3EB0ORIG"), type=ProtocolMessage.REVOKE
    )
    async with wired(tmp_path) as w:
        for ev in (
            to_list(original, "3EB0ORIG", sender),
            to_list(Message(protocolMessage=edit), "3EB0E1", sender, edit="1"),
            to_list(encrypted, "3EB0E2", sender),
            to_list(Message(protocolMessage=revoke), "3EB0R", sender, edit="7"),
        ):
            await dispatch(w.client, ev)
        records = list(w.log.read())
    events = [r.event for r in records]

    edits = [(e.chat, e.msg_id, e.text) for e in events if isinstance(e, MessageEdited)]
    assert edits == [(ALICE_JID, "3EB0ORIG", "the plan"), (ALICE_JID, "3EB0ORIG", "the plan!")]
    assert all(e.by_author for e in events if isinstance(e, MessageEdited))
    revoked = [(e.chat, e.msg_id) for e in events if isinstance(e, MessageRevoked)]
    assert revoked == [(ALICE_JID, "3EB0ORIG")]
    assert_no_list_anywhere(records, tmp_path)


async def test_view_once_media_to_a_list_is_filed_in_her_chat(tmp_path: Path) -> None:
    async with wired(tmp_path) as w:
        w.go.lid_map[LID] = ALICE
        placeholder = undecryptable(
            unavailable=True, chat=LIST, sender=f"{LID}:3@lid", is_group=True
        )
        await dispatch(w.client, placeholder)
        [event] = [r.event for r in w.log.read() if isinstance(r.event, MessageUndecryptable)]

    assert (event.chat, event.via, event.is_group) == (ALICE_JID, ALICE_LID, False)
    assert (event.sender, event.sender_alt) == (ALICE_LID, ALICE_JID)


async def answered_and_sent(w: Wired) -> tuple[ReplyPlanned, Any]:
    """Alice's chat's turn as the daemon's agent runs it, answered by the model; the
    planned reply, and the JID the daemon's sender sent it to."""
    config = loaded()
    counter = itertools.count(1)
    ids = Ids(lambda: f"R{next(counter)}", lambda: None)
    later = time.time() + 60  # the debounce is over
    for _ in range(5):
        plan = turn.step(turn.Facts(w.folded.view, config, later, ids), ALICE_JID)
        if plan.events:
            await w.folded.append(*plan.events)
        if isinstance(plan.effect, turn.Ask):
            break
    asked = plan.effect
    assert isinstance(asked, turn.Ask), plan
    result = LlmResult(content="Lima.", citations=[], usage=Usage(), finish_reason="stop")
    done = turn.answered(turn.Facts(w.folded.view, config, later, ids), asked, result)
    await w.folded.append(TransportStatus(state="connected"), *done.events)
    [reply] = [e for e in done.events if isinstance(e, ReplyPlanned)]
    await Sender(w.folded, w.transport, Settings(config), clock=time.time).send_due()
    [(to, sent)] = w.go.sent
    assert sent.conversation == "Lima."
    return reply, to


def assert_no_list_anywhere(records: list[Recorded], store: Path) -> None:
    """Nothing is stored under the list's id: no event names it, no file holds it."""
    assert [r for r in records if "@broadcast" in r.chat] == []
    for path in iter_store_files(store):
        assert b"@broadcast" not in path.read_bytes(), path
