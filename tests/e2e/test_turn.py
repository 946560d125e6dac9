"""One answered message, as the log records it (docs/events.md)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from zoneinfo import ZoneInfo

from events.model import (
    ChatTurn,
    LlmCompleted,
    LlmRequested,
    MessageReceived,
    ReplyPlanned,
    ReplySent,
    SessionStarted,
)
from pipeline.llm import composed_at
from tests.e2e.harness import ALICE, ALICE_PERSONA, ALICE_PROMPT, Daemon
from tests.llm_server import SEARCH_RESULTS, untimed


def test_one_turn_is_logged_in_order_with_what_went_over_the_wire(daemon: Daemon):
    msg_id = daemon.message("Cheap flights to Lisbon?")
    reply = daemon.next_sent()
    daemon.wait_event(ReplySent, wa_id=reply["id"])

    turn = [r.event for r in daemon.events() if r.chat == ALICE]
    assert [type(e) for e in turn] == [
        MessageReceived,
        SessionStarted,
        LlmRequested,
        LlmCompleted,
        ReplyPlanned,
        ReplySent,
    ]
    (received,) = daemon.find(MessageReceived, chat=ALICE)
    (started,) = daemon.find(SessionStarted, chat=ALICE)
    (requested,) = daemon.find(LlmRequested, chat=ALICE)
    (completed,) = daemon.find(LlmCompleted, chat=ALICE)
    (planned,) = daemon.find(ReplyPlanned, chat=ALICE)
    (sent,) = daemon.find(ReplySent, chat=ALICE)
    assert received.msg_id == msg_id
    assert started.reason == "new"
    assert requested.session_id == started.session_id
    assert requested.trigger_ids == [msg_id]
    system, asked = requested.messages
    assert untimed(system.content) == f"{ALICE_PERSONA}\n\n{ALICE_PROMPT}"
    assert asked == ChatTurn("user", "Cheap flights to Lisbon?")
    # The model is told the date and time, in the owner's zone, to the minute.
    (at,) = [r.ts for r in daemon.events() if r.event == requested]
    told = composed_at(system.content)
    assert told is not None
    assert at - 60 < told <= at
    local = datetime.fromtimestamp(told, ZoneInfo("Europe/Berlin"))
    minute = local.isoformat(timespec="minutes")
    assert system.content.endswith(f"\n\nNow: {minute} ({local:%A}, Europe/Berlin)")
    assert requested.model == "perplexity/sonar"
    assert requested.params["temperature"] == 0.2
    assert requested.config_hash == hashlib.sha256(daemon.config.read_bytes()).hexdigest()
    assert completed.call_id == requested.call_id
    assert completed.usage.cost_usd == 0.0061
    assert [c.url for c in completed.citations] == [r["url"] for r in SEARCH_RESULTS]
    assert planned.call_id == requested.call_id
    assert planned.in_reply_to == msg_id
    assert planned.text == reply["text"]
    assert sent.reply_id == planned.reply_id
    assert sent.wa_id == reply["id"]


def test_the_wire_request_is_what_the_log_says_was_sent(daemon: Daemon, llm_server):
    daemon.message("Where to eat in Porto?")
    daemon.next_sent()

    (requested,) = daemon.find(LlmRequested, chat=ALICE)
    (http,) = llm_server.requests
    assert http.path == "/v1/responses"
    body = http.json
    assert body["model"] == requested.model
    wire = [(i["role"], i["content"]) for i in body["input"]]
    if "instructions" in body:
        wire.insert(0, ("system", body["instructions"]))
    assert wire == [(t.role, t.content) for t in requested.messages]
    assert body["tools"][0] == {"type": "web_search"}
    # The function tools offered are the ones the request records (reminders, by default).
    assert [t["name"] for t in body["tools"][1:]] == requested.tools
