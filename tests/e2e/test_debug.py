"""``debug: true`` shows the owner what goes to the LLM (docs/config.md)."""

from __future__ import annotations

from events.model import ReplyPlanned
from tests.e2e.harness import ALICE, ALICE_PERSONA, ALICE_PROMPT, OWNER_JID, entities


def test_debug_entity_sends_a_note_to_the_owner_before_the_reply(make_daemon):
    d = make_daemon(entities(Alice={"debug": True}))
    msg_id = d.message("Weekend in Vienna?")

    note = d.next_sent()
    reply = d.next_sent()

    assert note["purpose"] == "debug"
    assert note["chat"] == OWNER_JID
    assert note["reply_to"] is None
    assert "Weekend in Vienna?" in note["text"]
    assert f"{ALICE_PERSONA}\n\n{ALICE_PROMPT}" in note["text"]
    assert ALICE_PROMPT in note["text"]
    assert reply["purpose"] == "reply"
    assert reply["chat"] == ALICE
    assert reply["reply_to"] == msg_id
    assert [p.purpose for p in d.find(ReplyPlanned) if p.purpose != "startup"] == [
        "debug",
        "reply",
    ]


def test_no_debug_note_without_debug(daemon):
    daemon.message("Weekend in Vienna?")

    assert daemon.next_sent()["purpose"] == "reply"
    assert daemon.find(ReplyPlanned, purpose="debug") == []
