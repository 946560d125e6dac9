"""The edge of the log over stdio (issue 18, items 4, 6 and 12; docs/stdio.md):
messages the bot cannot read, disappearing-message timers, and what WhatsApp reports
about the bot's own messages, down to the owner's alert when a reply is not delivered."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from events.model import (
    LlmRequested,
    MessageSkipped,
    MessageUndecryptable,
    OwnerAlerted,
    ReplyDelivered,
    ReplyPlanned,
    ReplySent,
)
from tests.e2e.conftest import MakeDaemon
from tests.e2e.harness import ALICE, OWNER_JID, STRANGER, Daemon, iter_store_files, run_cli
from tests.e2e.test_alerts import Hook
from tests.llm_server import FakeLlmServer, Reply, agent_answer

T1, T2, T3 = 1_764_070_100, 1_764_070_200, 1_764_070_300


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


def cli(daemon: Daemon, *args: str) -> str:
    done = run_cli([*args, "--store", str(daemon.store)], cwd=daemon.workdir, env=daemon.env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def audit_json(daemon: Daemon) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(cli(daemon, "audit", "--chat", "Alice", "--json"))
    return doc


def receipt(daemon: Daemon, ids: list[str], state: str, **fields: Any) -> None:
    daemon.send(type="receipt", chat=ALICE, ids=ids, state=state, **fields)


def test_an_undecryptable_message_is_recorded_never_answered_and_shown(
    make_daemon: MakeDaemon,
) -> None:
    daemon = make_daemon()
    view_once = {"type": "undecryptable", "chat": ALICE, "id": "V1", "reason": "view_once"}
    daemon.send(**view_once)
    daemon.send(**view_once)  # WhatsApp hands it over again: recorded once
    daemon.send(type="undecryptable", chat=STRANGER, id="X1", reason="decrypt_failed")
    msg = daemon.message("did you see my photo?")
    reply = daemon.next_sent()
    daemon.wait_event(ReplySent, wa_id=reply["id"])
    daemon.stop()

    assert reply["reply_to"] == msg  # the question is answered, the photo never is
    [unreadable] = daemon.find(MessageUndecryptable)
    assert (unreadable.chat, unreadable.msg_id, unreadable.sender) == (ALICE, "V1", ALICE)
    assert (unreadable.reason, unreadable.from_me) == ("view_once", False)
    assert not daemon.find(MessageSkipped, msg_id="V1")
    assert all("V1" not in r.trigger_ids for r in daemon.find(LlmRequested))
    assert all(r.in_reply_to != "V1" for r in daemon.find(ReplyPlanned))
    # A chat that is not monitored leaves nothing behind.
    for path in iter_store_files(daemon.store):
        assert STRANGER.split("@")[0].encode() not in path.read_bytes(), path

    doc = audit_json(daemon)
    [turn] = [t for t in doc["turns"] if t["kind"] == "undecryptable"]
    assert (turn["reason"], [m["msg_id"] for m in turn["messages"]]) == ("view_once", ["V1"])
    assert turn["messages"][0]["text"] == ""
    assert [e["msg_id"] for e in doc["events"] if e["type"] == "MessageUndecryptable"] == ["V1"]
    text = cli(daemon, "audit", "--chat", "Alice")
    assert "not readable: view-once media, which WhatsApp shows on the phone only" in text
    assert "never answered" in text
    stats = json.loads(cli(daemon, "stats", "--json"))
    assert stats["events"]["MessageUndecryptable"] == stats["undecryptable"] == 1


def test_replies_carry_the_chats_disappearing_timer_until_another_arrives(
    make_daemon: MakeDaemon,
) -> None:
    daemon = make_daemon()
    assert "expiration" not in (daemon.startup or {})

    def answer(text: str, **fields: Any) -> dict[str, Any]:
        msg = daemon.message(text, **fields)
        sent = daemon.next_sent()
        assert sent["reply_to"] == msg
        return sent

    assert answer("hi", expiration=604800)["expiration"] == 604800
    assert answer("still there?")["expiration"] == 604800  # said nothing: the timer stands
    assert answer("changed it", expiration=86400)["expiration"] == 86400
    assert "expiration" not in answer("turned it off", expiration=0)
    assert answer("on again", expiration=604800)["expiration"] == 604800
    # Switched off in WhatsApp: said once, by a message of its own, then by nothing.
    daemon.send(type="timer", chat=ALICE, id="T1", expiration=0)
    assert "expiration" not in answer("plain text, no timer on it")
    daemon.send(type="timer", chat=ALICE, id="T2", expiration=86400)
    assert answer("and on once more")["expiration"] == 86400
    daemon.stop()


def test_receipts_are_recorded_per_part_and_shown_by_audit(
    make_daemon: MakeDaemon, llm_server: FakeLlmServer
) -> None:
    paragraphs = "\n\n".join(f"Paragraph {n}. " + "word " * 30 for n in range(3))
    body = agent_answer({"model": "perplexity/sonar", "input": [{"role": "user", "content": "x"}]})
    body["output"][-1]["content"][0]["text"] = paragraphs
    llm_server.script(Reply(body=body))
    daemon = make_daemon({"whatsapp": {"max_message_chars": 200}})
    daemon.message("tell me everything")
    parts = [daemon.next_sent()]
    while parts[-1].get("part", 0) < parts[-1].get("parts", 0):
        parts.append(daemon.next_sent())
    first, second, *rest = [p["id"] for p in parts]
    # At once, as a phone would: a receipt may overtake the bot's record of the send.
    receipt(daemon, [first, second], "delivered", timestamp=T1)
    receipt(daemon, [first], "read", timestamp=T2)
    receipt(daemon, [first], "read", timestamp=T3)  # told twice: recorded once
    receipt(daemon, ["3EB0NOTOURS"], "read")  # the owner's own message: dropped unseen
    daemon.send(type="receipt", chat=STRANGER, ids=["3EB0STRANGE"], state="delivered")
    daemon.wait_event(ReplyDelivered, wa_id=first, state="read")
    daemon.wait_event(ReplyDelivered, wa_id=second, state="delivered")
    daemon.stop()

    planned = {p.wa_id: p.reply_id for p in daemon.find(ReplyPlanned, purpose="reply")}
    facts = {(r.wa_id, r.state, r.at, r.reply_id, r.chat) for r in daemon.find(ReplyDelivered)}
    assert facts == {
        (first, "delivered", T1, planned[first], ALICE),
        (first, "read", T2, planned[first], ALICE),
        (second, "delivered", T1, planned[second], ALICE),
    }
    for path in iter_store_files(daemon.store):
        assert b"3EB0NOTOURS" not in path.read_bytes(), path
        assert b"3EB0STRANGE" not in path.read_bytes(), path

    [turn] = [t for t in audit_json(daemon)["turns"] if t["kind"] == "answered"]
    shown = {d["wa_id"]: (d["reached"], d["receipts"]) for d in turn["replies"]}
    assert shown[first] == ("read", {"delivered": T1, "read": T2})
    assert shown[second] == ("delivered", {"delivered": T1})
    assert all(shown[r] == ("server", {}) for r in rest)  # sent; no phone confirmed yet
    text = cli(daemon, "audit", "--chat", "Alice")
    assert f"as {first}; delivered 2025-11-25T11:28:20Z, read 2025-11-25T11:30:00Z" in text
    assert f"as {second}; delivered 2025-11-25T11:28:20Z\n" in text
    receipts = json.loads(cli(daemon, "stats", "--json"))["receipts"]
    startup = 1  # the owner's own chat: sent, never confirmed here
    assert receipts == {"server": len(rest) + startup, "delivered": 1, "read": 1, "played": 0}


def test_a_reply_no_phone_confirmed_alerts_the_owner_once_per_episode(
    make_daemon: MakeDaemon, hook: Hook
) -> None:
    daemon = make_daemon({"alerts": {"webhook": hook.url, "undelivered_minutes": 0.02}})

    def answered(text: str) -> str:
        msg = daemon.message(text)
        sent = daemon.next_sent()
        assert (sent["purpose"], sent["reply_to"]) == ("reply", msg)
        return str(sent["id"])

    confirmed = answered("first")
    receipt(daemon, [confirmed], "delivered")  # this transport reports receipts
    daemon.wait_event(ReplyDelivered, wa_id=confirmed)
    answered("second")  # never confirmed: 1.2 s later the clock alone raises the alert
    alert = daemon.next_sent()
    third = answered("third")  # unconfirmed too, in the same episode: no second alert
    receipt(daemon, [third], "read")  # a phone confirms again: the episode is over
    daemon.wait_event(ReplyDelivered, wa_id=third)
    answered("fourth")  # unconfirmed after that: a new episode
    again = daemon.next_sent()
    daemon.stop()

    assert (alert["purpose"], alert["chat"]) == ("alert", OWNER_JID)
    assert "did not reach the recipient's phone" in alert["text"]
    assert ALICE in alert["text"]
    assert again["purpose"] == "alert"
    purposes = [s["purpose"] for s in daemon.all_sent]
    assert purposes == ["startup", *["reply"] * 2, "alert", *["reply"] * 2, "alert"]
    assert [a.kind for a in daemon.find(OwnerAlerted)] == ["undelivered"] * 2
    assert [b["kind"] for b in hook.bodies] == ["undelivered"] * 2
