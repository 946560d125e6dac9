"""What the daemon prints: the stdio contract of docs/stdio.md."""

from __future__ import annotations

import json

from events.model import MessageReceived, ReplySent
from tests.e2e.harness import ALICE, LINE_KEYS, OWNER_JID, SENT_KEYS, Daemon, replies_to


def test_first_line_is_the_startup_message_to_the_owner(make_daemon):
    d = make_daemon(start=False).start(expect_startup=False)

    first = d.next_sent()

    assert first["type"] == "sent"
    assert first["purpose"] == "startup"
    assert first["chat"] == OWNER_JID
    assert first["reply_to"] is None
    assert set(first) == SENT_KEYS


def test_stdout_carries_only_contract_lines_with_their_keys(daemon: Daemon):
    msg_id = daemon.message("What is the capital of France?")
    reply = daemon.next_sent()
    daemon.wait_event(ReplySent, wa_id=reply["id"])
    daemon.stop()  # the whole of stdout, up to the end

    assert set(reply) == SENT_KEYS
    assert reply["type"] == "sent"
    assert reply["purpose"] == "reply"
    assert reply["chat"] == ALICE
    assert reply["reply_to"] == msg_id
    assert reply["text"].startswith("Echo: What is the capital of France?")
    assert "\nSources:\n[1] example.com" in reply["text"]
    kinds = []
    for line in daemon.stdout_lines:
        obj = json.loads(line)
        kinds.append(obj["type"])
        assert set(obj) == LINE_KEYS[obj["type"]], line
    # The typing indicator while the LLM answered, then the reply.
    assert kinds == ["sent", "presence", "presence", "sent"]
    assert [s["state"] for s in daemon.shown] == ["composing", "paused"]


def test_a_message_without_id_gets_a_fresh_one_that_the_reply_names(daemon: Daemon):
    daemon.send(chat=ALICE, text="no id here")
    reply = daemon.next_sent()

    received = daemon.find(MessageReceived, chat=ALICE)
    assert len(received) == 1
    assert received[0].msg_id
    assert reply["reply_to"] == received[0].msg_id
    assert replies_to(daemon.all_sent, received[0].msg_id) == [reply]
