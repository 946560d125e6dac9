"""Only a message's author may edit it: a member's forged edit is recorded, and changes nothing.

WhatsApp's own apps accept an edit only from the original's sender, but the
key of an edit is the sender's to write: a modified client can name another
member's message (``participant``). Real protos through neonize's callback
into the daemon's intake and a real log, as in a group the bot answers.
"""

from __future__ import annotations

import tests.neonize_quiet  # noqa: F401  (first: see there)

# isort: split
from pathlib import Path
from typing import Any

import pytest
import structlog
from neonize.proto.waCommon.WACommon_pb2 import MessageKey
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message, ProtocolMessage

from events.model import MessageEdited
from projections import queue
from tests.neonize_fakes import ALICE, GROUP, LID, dispatch, message_ev
from tests.neonize_wired import loaded, wired

pytestmark = pytest.mark.anyio
ALICE_JID = f"{ALICE}@s.whatsapp.net"
ALICE_LID = f"{LID}@lid"
BOB_JID = "491702222222@s.whatsapp.net"
BOB_LID = "555555555555555@lid"


def edit(words: str, *, sender: str, sender_alt: str, msg_id: str) -> Any:
    """An edit of Alice's message, whoever sends it (the key names her message)."""
    key = MessageKey(remoteJID=GROUP, fromMe=False, ID="3EB0ORIG", participant=ALICE_LID)
    change = ProtocolMessage(
        key=key, type=ProtocolMessage.MESSAGE_EDIT, editedMessage=Message(conversation=words)
    )
    return message_ev(
        Message(protocolMessage=change),
        chat=GROUP,
        sender=sender,
        sender_alt=sender_alt,
        msg_id=msg_id,
        edit="1",
    )


async def test_a_members_edit_of_anothers_message_is_recorded_and_ignored(
    tmp_path: Path,
) -> None:
    group = {"type": "group", "jid": GROUP, "name": "Family"}
    original = message_ev(
        Message(conversation="please transfer 10 EUR to Carol"),
        chat=GROUP,
        sender=f"{LID}:3@lid",
        sender_alt=ALICE_JID,
        msg_id="3EB0ORIG",
    )
    forged = edit(
        "please transfer 1000 EUR to Bob",
        sender="555555555555555:1@lid",
        sender_alt=BOB_JID,
        msg_id="3EB0BOB",
    )
    # Alice's own edit, her phone naming her by LID alone: the log ties it to her.
    hers = edit(
        "please transfer 20 EUR to Carol", sender=f"{LID}:3@lid", sender_alt="", msg_id="3EB0ALICE"
    )

    with structlog.testing.capture_logs() as logs:
        async with wired(tmp_path, config=loaded(group)) as w:
            await dispatch(w.client, original)
            await dispatch(w.client, forged)
            [item] = queue.pending(w.folded.view.queue, GROUP)
            assert item.text == "please transfer 10 EUR to Carol"
            await dispatch(w.client, hers)
            [item] = queue.pending(w.folded.view.queue, GROUP)
            assert item.text == "please transfer 20 EUR to Carol"
            edits = [r.event for r in w.log.read() if isinstance(r.event, MessageEdited)]

    assert [(e.editor, e.editor_alt, e.from_me) for e in edits] == [
        (BOB_LID, BOB_JID, False),
        (ALICE_LID, ALICE_JID, False),
    ]
    [ignored] = [e for e in logs if e["event"] == "edit_by_someone_else_ignored"]
    assert (ignored["chat"], ignored["msg_id"], ignored["editor"]) == (GROUP, "3EB0ORIG", BOB_LID)
    assert "EUR" not in repr(logs)  # ids only, never the words
