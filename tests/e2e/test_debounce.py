"""A burst of messages becomes one turn, also across a crash (sections 5 and 8)."""

from __future__ import annotations

from events.model import LlmRequested, MessageReceived, ReplySent
from tests.e2e.harness import ALICE, Daemon, replies_to

DEBOUNCE = {"polling": {"debounce_seconds": 1.0}}


def test_a_quick_burst_is_answered_once(make_daemon):
    d: Daemon = make_daemon(DEBOUNCE)
    ids = [d.message(text) for text in ("Trip to Spain", "in May", "for two people")]

    reply = d.next_sent()
    d.wait_event(ReplySent, wa_id=reply["id"])

    assert reply["reply_to"] == ids[-1]
    (requested,) = d.find(LlmRequested, chat=ALICE)
    assert requested.trigger_ids == ids
    user = requested.messages[-1].content
    assert all(text in user for text in ("Trip to Spain", "in May", "for two people"))
    assert [t.role for t in requested.messages] == ["system", "user"]
    d.expect_no_sent(within=0.3)


def test_debounce_survives_kill9_before_the_window_ends(make_daemon):
    d: Daemon = make_daemon(DEBOUNCE)
    msg_id = d.message("Trip to Spain")
    d.wait_event(MessageReceived, msg_id=msg_id)
    d.kill9()
    assert d.find(LlmRequested) == []

    d.restart()
    reply = d.next_sent()
    d.wait_event(ReplySent, wa_id=reply["id"])
    d.stop()

    assert reply["reply_to"] == msg_id
    assert len(replies_to(d.all_sent, msg_id)) == 1
    assert len(d.find(LlmRequested, chat=ALICE)) == 1
