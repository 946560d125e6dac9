"""``kill -9`` at awkward moments loses nothing and sends nothing twice."""

from __future__ import annotations

from events.model import LlmCompleted, LlmFailed, LlmRequested, ReplyPlanned, ReplySent
from tests.e2e.harness import ALICE, Daemon, replies_to


def test_kill9_during_the_llm_call_asks_again_and_replies_once(daemon: Daemon, llm_server):
    gate = llm_server.hold()
    msg_id = daemon.message("Museums in Madrid?")
    assert llm_server.wait_for_requests(1)
    first = daemon.wait_event(LlmRequested, trigger_ids=[msg_id])
    daemon.kill9()
    gate.set()

    daemon.restart()
    reply = daemon.next_sent()
    daemon.wait_event(ReplySent, wa_id=reply["id"])
    daemon.stop()

    assert reply["reply_to"] == msg_id
    assert len(replies_to(daemon.all_sent, msg_id)) == 1
    requested = daemon.find(LlmRequested, chat=ALICE)
    assert [r.trigger_ids for r in requested] == [[msg_id], [msg_id]]
    assert requested[0].call_id == first.call_id
    assert daemon.find(LlmCompleted, call_id=first.call_id) == []
    assert daemon.find(LlmFailed, call_id=first.call_id) == []
    assert len(daemon.find(LlmCompleted, call_id=requested[1].call_id)) == 1
    assert len(llm_server.requests) == 2


def test_a_reply_planned_but_not_sent_is_sent_once_after_restart(daemon: Daemon):
    daemon.kill9()
    # What a crash between ReplyPlanned and ReplySent leaves behind. Written
    # through the harness's own log: a second SQLiteLog in this process would
    # open and close the file, which drops the harness connection's locks.
    daemon.log.append(
        ReplyPlanned(
            chat=ALICE,
            reply_id="planned-before-crash",
            purpose="reply",
            text="Planned before the crash",
            in_reply_to="M-crash",
            wa_id="WBPLANNEDBEFORECRASH",
        )
    )

    daemon.restart()
    owed = daemon.next_sent()
    daemon.wait_event(ReplySent, reply_id="planned-before-crash")
    daemon.stop()
    daemon.restart()  # a second start owes nothing
    daemon.stop()

    assert owed == {
        "type": "sent",
        "id": "WBPLANNEDBEFORECRASH",
        "chat": ALICE,
        "text": "Planned before the crash",
        "reply_to": "M-crash",
        "purpose": "reply",
        "quoted": None,
    }
    assert [s for s in daemon.all_sent if s["id"] == "WBPLANNEDBEFORECRASH"] == [owed]
    sent = daemon.find(ReplySent, reply_id="planned-before-crash")
    assert [s.wa_id for s in sent] == ["WBPLANNEDBEFORECRASH"]
