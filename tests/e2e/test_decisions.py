"""Why a message is not answered: each skip recorded with its reason (docs/events.md)."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from events.model import LlmRequested, MessageReceived, MessageSkipped, ReplyPlanned, ReplySent
from tests.e2e.harness import ALICE, BOB, GROUP, OWNER, OWNER_JID, STRANGER, Daemon

NOT_TRIGGERED = 'it does not mention you or quote the bot, and no keyword matched ("bot")'


def _answer(daemon: Daemon, text: str, chat: str = ALICE, **fields: Any) -> dict[str, Any]:
    msg_id = daemon.message(text, chat=chat, **fields)
    reply = daemon.next_sent()
    assert reply["reply_to"] == msg_id
    daemon.wait_event(ReplySent, wa_id=reply["id"])
    return reply


def _assert_skipped(daemon: Daemon, msg_id: str, reason: str) -> None:
    """The log shows the skip, then nothing is asked or sent for that message."""
    daemon.wait_event(MessageSkipped, msg_id=msg_id)
    assert [s.reason for s in daemon.find(MessageSkipped, msg_id=msg_id)] == [reason]
    assert not [r for r in daemon.find(LlmRequested) if msg_id in r.trigger_ids]
    assert not daemon.find(ReplyPlanned, in_reply_to=msg_id)
    daemon.expect_no_sent(within=0.3)


def test_echo_by_id_is_skipped(daemon: Daemon):
    reply = _answer(daemon, "hello")

    daemon.send(id=reply["id"], chat=ALICE, text=reply["text"], from_me=True)

    _assert_skipped(daemon, reply["id"], "echo")


def test_echo_by_text_in_the_self_chat_is_skipped(daemon: Daemon):
    reply = _answer(daemon, "note to self", chat=OWNER_JID, from_me=True)

    echo_id = daemon.message(reply["text"], chat=OWNER_JID, from_me=True)

    _assert_skipped(daemon, echo_id, "echo")


def test_group_message_without_trigger_is_not_triggered(daemon: Daemon):
    msg_id = daemon.message("dinner at eight?", chat=GROUP, sender=BOB, push_name="Bob")

    _assert_skipped(daemon, msg_id, "not_triggered")


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("hey bot, which film tonight?", {}),
        (f"@{OWNER} which film tonight?", {}),
        ("@Me which film tonight?", {"mentions": [OWNER_JID]}),
    ],
    ids=["keyword", "number-in-text", "mentions-list"],
)
def test_group_message_is_triggered(daemon: Daemon, text: str, fields: dict[str, Any]):
    msg_id = daemon.message(text, chat=GROUP, sender=BOB, push_name="Bob", **fields)

    reply = daemon.next_sent()

    assert reply["chat"] == GROUP
    assert reply["reply_to"] == msg_id
    (requested,) = daemon.find(LlmRequested, chat=GROUP)
    assert requested.messages[-1].content == f"Bob: {text}"


def test_message_older_than_catch_up_is_stale(daemon: Daemon):
    msg_id = daemon.message("from yesterday", timestamp=time.time() - 31 * 60)

    _assert_skipped(daemon, msg_id, "stale")


def test_message_within_catch_up_is_answered(daemon: Daemon):
    msg_id = daemon.message("sent while offline", timestamp=(time.time() - 60) * 1000)

    assert daemon.next_sent()["reply_to"] == msg_id


def test_empty_text_is_skipped(daemon: Daemon):
    msg_id = daemon.message("   ")

    _assert_skipped(daemon, msg_id, "empty")


def test_replies_per_chat_per_hour_limit(make_daemon):
    d = make_daemon({"limits": {"replies_per_chat_per_hour": 1}})
    _answer(d, "first")

    msg_id = d.message("second")

    _assert_skipped(d, msg_id, "rate_limited")


def test_daily_budget_limit(make_daemon):
    d = make_daemon({"limits": {"daily_budget_usd": 0.005}})
    _answer(d, "first")  # costs 0.0061

    msg_id = d.message("second")

    # The owner hears of it once, in their own chat; the sender hears nothing.
    alert = d.next_sent()
    assert (alert["chat"], alert["purpose"]) == (OWNER_JID, "alert")
    assert "budget" in alert["text"]
    _assert_skipped(d, msg_id, "budget")
    third = d.message("third")
    _assert_skipped(d, third, "budget")


def test_owner_takeover_pauses_the_chat_then_the_bot_resumes(make_daemon):
    minutes = 0.02
    d = make_daemon({"takeover": {"enabled": True, "minutes": minutes}})
    owner_id = d.message("I'll answer this one myself", from_me=True)
    d.wait_event(MessageSkipped, msg_id=owner_id, reason="takeover")

    paused_id = d.message("are you there?")
    _assert_skipped(d, paused_id, "paused")

    # The pause ends on the clock: wait it out from the logged takeover.
    took_over = d.wait_record(MessageSkipped, msg_id=owner_id).ts
    time.sleep(max(0.0, took_over + minutes * 60 + 0.1 - time.time()))
    resumed_id = d.message("hello again")
    assert d.next_sent()["reply_to"] == resumed_id


def test_unmonitored_chat_leaves_no_trace(daemon: Daemon):
    daemon.message("hi from a stranger", chat=STRANGER, id="STRANGER1")
    msg_id = daemon.message("hi from Alice")

    assert daemon.next_sent()["reply_to"] == msg_id
    for rec in daemon.events():
        assert rec.chat != STRANGER
        assert "STRANGER1" not in repr(rec.event)
        assert "stranger" not in repr(rec.event)
    received = daemon.find(MessageReceived)
    assert [m.msg_id for m in received] == [msg_id]


def _skip_lines(daemon: Daemon) -> dict[str, dict[str, Any]]:
    """msg_id -> the INFO line that said why it was skipped (stderr is JSON lines here)."""
    lines = [json.loads(line) for line in daemon.stderr_lines() if line.startswith("{")]
    return {line["msg_id"]: line for line in lines if line["event"] == "message_skipped"}


def test_every_skip_is_one_info_line_saying_why_in_words(make_daemon):
    """ "Why didn't it answer?" from the log alone, without the message's text."""
    d = make_daemon({"takeover": {"enabled": True, "minutes": 30}})
    group_id = d.message("dinner at eight?", chat=GROUP, sender=BOB, push_name="Bob")
    d.wait_event(MessageSkipped, msg_id=group_id)
    owner_id = d.message("I'll answer this one myself", from_me=True)
    d.wait_event(MessageSkipped, msg_id=owner_id)
    paused_id = d.message("are you there?")
    d.wait_event(MessageSkipped, msg_id=paused_id)
    blank_id = d.message("   ", chat=OWNER_JID, from_me=True)
    d.wait_event(MessageSkipped, msg_id=blank_id)
    d.wait_stderr(blank_id)

    said = _skip_lines(d)
    assert said[group_id]["level"] == "info"
    assert (said[group_id]["chat"], said[group_id]["reason"]) == (GROUP, "not_triggered")
    assert said[group_id]["why"] == NOT_TRIGGERED
    took_over = d.wait_record(MessageSkipped, msg_id=owner_id).ts
    until = datetime.fromtimestamp(took_over + 30 * 60, ZoneInfo("Europe/Berlin"))
    assert said[owner_id]["why"].startswith("you wrote here yourself: the bot stays silent")
    assert said[paused_id]["why"].startswith("you took over this chat at ")
    assert said[paused_id]["why"].endswith(f"silent until {until:%H:%M %Z}")
    assert said[blank_id]["why"] == "nothing to answer: no text and nothing attached"
    for text in ("dinner", "answer this one", "are you there"):
        assert text not in d.stderr
