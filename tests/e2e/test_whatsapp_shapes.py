"""WhatsApp as it really is, black-box over stdio (docs/stdio.md, docs/whatsapp.md).

Most people are addressed by LID with the phone number as the other id; the
owner's ids are learnt when the connection says so; status posts and
newsletters are not chats; messages get edited, deleted and quoted.
"""

from __future__ import annotations

import tests.neonize_quiet  # noqa: F401  (first: see there)

# isort: split
import time
from pathlib import Path
from typing import Any

from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as wa

from events.model import (
    Compacted,
    LlmRequested,
    MessageEdited,
    MessageReceived,
    MessageRevoked,
    MessageSkipped,
    ReplyPlanned,
    ReplySent,
    TransportStatus,
)
from tests import inbound_shapes as shapes
from tests.e2e.conftest import MakeDaemon
from tests.e2e.harness import ALICE, BOB, GROUP, OWNER_JID, Daemon, iter_store_files, run_cli
from tests.llm_server import FakeLlmServer, Reply, agent_answer
from tests.test_inbound_table import run_inbound

ALICE_LID = "123456789012345@lid"
OWNER_LID = "987654321098765@lid"


def _answered(daemon: Daemon, msg_id: str) -> dict[str, Any]:
    reply = daemon.next_sent()
    assert reply["reply_to"] == msg_id, reply
    daemon.wait_event(ReplySent, wa_id=reply["id"])
    return reply


def _user_turns(request: LlmRequested) -> list[str]:
    return [t.content for t in request.messages if t.role == "user"]


def test_a_person_is_one_chat_whichever_id_whatsapp_uses(daemon: Daemon) -> None:
    first = daemon.message("Where is Lisbon?", chat=ALICE_LID, chat_alt=ALICE)
    by_lid = _answered(daemon, first)
    second = daemon.message("And Porto?", chat=ALICE)
    by_phone = _answered(daemon, second)

    # Replies go to the id the chat's last message came by.
    assert by_lid["chat"] == ALICE_LID
    assert by_phone["chat"] == ALICE
    received = daemon.find(MessageReceived)
    assert [(m.chat, m.via) for m in received] == [(ALICE, ALICE_LID), (ALICE, None)]
    # One session: the second request carries the first exchange.
    requests = daemon.find(LlmRequested)
    assert requests[1].session_id == requests[0].session_id
    assert _user_turns(requests[1]) == ["Where is Lisbon?", "And Porto?"]


def test_the_owner_is_recognised_by_the_lid_the_connection_reports(daemon: Daemon) -> None:
    daemon.send(type="status", state="connected", me_lid=OWNER_LID)
    daemon.wait_event(TransportStatus, me_lid=OWNER_LID)

    # Note to self, over the owner's LID.
    note = daemon.message("remember the milk", chat=OWNER_LID)
    reply = _answered(daemon, note)
    assert reply["chat"] == OWNER_LID
    assert daemon.find(MessageReceived, msg_id=note)[0].chat == OWNER_JID

    # The owner typing into a LID-addressed chat on the phone: a takeover.
    own = daemon.message("I'll handle this", chat=ALICE_LID, chat_alt=ALICE, sender=OWNER_LID)
    daemon.wait_event(MessageSkipped, msg_id=own)
    assert daemon.find(MessageSkipped, msg_id=own)[0].reason == "takeover"

    # A group mention of the owner's LID.
    mention = daemon.message(
        "@987654321098765 thoughts?", chat=GROUP, sender=BOB, mentions=[OWNER_LID]
    )
    assert _answered(daemon, mention)["chat"] == GROUP


def test_a_lid_mention_before_the_lid_is_known_does_not_trigger(daemon: Daemon) -> None:
    mention = daemon.message("@987654321098765 thoughts?", chat=GROUP, sender=BOB)
    daemon.wait_event(MessageSkipped, msg_id=mention)
    assert daemon.find(MessageSkipped, msg_id=mention)[0].reason == "not_triggered"


def test_status_posts_and_newsletters_are_never_answered_never_stored(daemon: Daemon) -> None:
    marker = "holiday-photos-7f3a"
    daemon.message(marker, chat="status@broadcast", sender=ALICE, sender_alt=ALICE)
    daemon.message(marker, chat="120363999999999999@newsletter", sender=ALICE)
    daemon.message(marker, chat="1764070000@broadcast", sender=ALICE_LID, is_group=True)
    after = daemon.message("still here?")
    _answered(daemon, after)
    daemon.stop()

    assert [m.msg_id for m in daemon.find(MessageReceived)] == [after]
    for path in iter_store_files(daemon.store):
        assert marker.encode() not in path.read_bytes(), path


def test_an_edit_before_the_answer_replaces_the_text(make_daemon: MakeDaemon) -> None:
    daemon = make_daemon({"polling": {"debounce_seconds": 1}})
    msg = daemon.message("Whats teh capital of Peru?")
    daemon.send(type="edit", chat=ALICE, id=msg, text="What's the capital of Peru?")
    daemon.wait_event(MessageEdited, msg_id=msg)
    reply = _answered(daemon, msg)

    [request] = daemon.find(LlmRequested)
    assert _user_turns(request) == ["What's the capital of Peru?"]
    assert "the capital of Peru" in reply["text"]


def test_a_message_deleted_before_the_answer_is_never_answered(make_daemon: MakeDaemon) -> None:
    daemon = make_daemon({"polling": {"debounce_seconds": 1}})
    msg = daemon.message("oops, wrong chat")
    daemon.send(type="revoke", chat=ALICE, id=msg)
    daemon.wait_event(MessageSkipped, msg_id=msg)

    assert daemon.find(MessageSkipped, msg_id=msg)[0].reason == "revoked"
    assert daemon.find(LlmRequested) == []
    daemon.expect_no_sent(within=0.3)


def test_a_deleted_message_leaves_the_context(daemon: Daemon) -> None:
    secret = daemon.message("my PIN is 4711", chat=ALICE_LID, chat_alt=ALICE)
    _answered(daemon, secret)
    daemon.send(type="revoke", chat=ALICE_LID, id=secret)
    daemon.wait_event(MessageRevoked, msg_id=secret)
    later = daemon.message("what did I tell you?")
    _answered(daemon, later)

    request = daemon.find(LlmRequested)[-1]
    assert "4711" not in "".join(t.content for t in request.messages)


def test_a_quoted_message_is_in_the_turn(daemon: Daemon) -> None:
    msg = daemon.message(
        "Is this still on?",
        quoted={"id": "M0", "text": "Dinner at eight on Friday", "sender": BOB},
    )
    _answered(daemon, msg)

    [request] = daemon.find(LlmRequested)
    assert request.messages[-1].content == "> Dinner at eight on Friday\nIs this still on?"


def test_replies_in_groups_quote_their_trigger_and_dms_do_not(daemon: Daemon) -> None:
    dm = daemon.message("hi")
    assert _answered(daemon, dm)["quoted"] is None
    group = daemon.message("bot, a film for tonight?", chat=GROUP, sender=BOB)
    assert _answered(daemon, group)["quoted"] == group


def test_a_long_reply_is_sent_as_numbered_parts(
    make_daemon: MakeDaemon, llm_server: FakeLlmServer
) -> None:
    paragraphs = "\n\n".join(f"Paragraph {n}. " + "word " * 100 for n in range(12))
    body = agent_answer({"model": "perplexity/sonar", "input": [{"role": "user", "content": "x"}]})
    body["output"][-1]["content"][0]["text"] = paragraphs
    llm_server.script(Reply(body=body))
    daemon = make_daemon({"whatsapp": {"max_message_chars": 1000}})
    msg = daemon.message("tell me everything")
    parts = [daemon.next_sent()]
    while parts[-1].get("part", 0) < parts[-1].get("parts", 0):
        parts.append(daemon.next_sent())

    assert len(parts) > 1
    assert [p["part"] for p in parts] == list(range(1, len(parts) + 1))
    assert {p["parts"] for p in parts} == {len(parts)}
    assert {p["reply_to"] for p in parts} == {msg}
    assert all(len(p["text"]) <= 1000 for p in parts)
    assert all(p["text"].startswith(f"({p['part']}/{len(parts)}) ") for p in parts)
    assert len(daemon.find(ReplyPlanned, purpose="reply")) == len(parts)


def test_typing_while_answering_and_read_receipts_only_when_asked(
    make_daemon: MakeDaemon,
) -> None:
    quiet = make_daemon()
    _answered(quiet, quiet.message("hi"))
    assert [(s["type"], s["state"]) for s in quiet.shown] == [
        ("presence", "composing"),
        ("presence", "paused"),
    ]

    reading = make_daemon({"whatsapp": {"read_receipts": True, "typing": False}})
    msg = reading.message("hi")
    _answered(reading, msg)
    reading.stop()  # the receipt follows the send
    assert reading.shown == [{"type": "read", "chat": ALICE, "ids": [msg]}]


def test_audit_and_forget_take_the_person_whichever_id_they_wrote_from(
    daemon: Daemon,
) -> None:
    by_lid = daemon.message("first, by LID", chat=ALICE_LID, chat_alt=ALICE)
    _answered(daemon, by_lid)
    by_phone = daemon.message("second, by phone", chat=ALICE)
    _answered(daemon, by_phone)
    daemon.send(type="edit", chat=ALICE_LID, id=by_lid, text="first, edited")
    daemon.send(type="revoke", chat=ALICE, id=by_phone)
    daemon.wait_event(MessageRevoked, msg_id=by_phone)
    daemon.stop()
    env = daemon.env
    store = ["--store", str(daemon.store)]

    audit = run_cli(["audit", "--chat", "Alice", *store], cwd=daemon.workdir, env=env)
    forget = run_cli(["forget", "--chat", "Alice", *store], cwd=daemon.workdir, env=env)

    assert audit.returncode == 0, audit.stderr
    assert "first, by LID" in audit.stdout
    assert "second, by phone" in audit.stdout
    assert "edited: first, edited" in audit.stdout
    assert "deleted by the sender" in audit.stdout
    assert forget.returncode == 0, forget.stderr
    assert [r for r in daemon.events() if r.chat in (ALICE, ALICE_LID)] == []
    markers = [r.event for r in daemon.events() if isinstance(r.event, Compacted)]
    assert [(m.reason, m.chats) for m in markers] == [("forget", [ALICE])]


def test_locations_cards_polls_and_events_as_captured_reach_the_model_as_text(
    daemon: Daemon, tmp_path: Path
) -> None:
    """Captured WhatsApp events, turned into stdin lines by ``inbound``, answered over stdio."""
    now_ms = int(time.time() * 1000)
    parts = {
        "P1": wa.Message(locationMessage=shapes.location(comment="meet here")),
        "P2": wa.Message(
            contactMessage=wa.ContactMessage(displayName="Jane", vcard=shapes.VCARD_JANE)
        ),
        "P3": wa.Message(pollCreationMessageV3=shapes.poll()),
        "P4": wa.Message(eventMessage=shapes.event()),
    }
    files = []
    for msg_id, message in parts.items():
        path = tmp_path / f"{msg_id}.pb"
        path.write_bytes(shapes.ev(message, msg_id=msg_id, timestamp_ms=now_ms).SerializeToString())
        files.append(path)
    printed = run_inbound(*files)
    assert (printed.returncode, printed.stderr) == (0, ""), printed.stderr

    replies = {}
    for msg_id, line in zip(parts, printed.stdout.splitlines(), strict=True):
        daemon.send_raw(line)  # one at a time: each its own turn
        replies[msg_id] = _answered(daemon, msg_id)["text"]

    assert daemon.find(MessageSkipped) == []
    said = [_user_turns(r)[-1] for r in daemon.find(LlmRequested)]
    assert said == [
        "[location: Brandenburger Tor, Pariser Platz, 10117 Berlin; 52.516275, 13.377704]"
        " meet here",
        "[contact card: Jane Doe, +49 170 1234567]",
        "[poll: Which day?; options: Monday / Friday; one choice]",
        "[event: Summer party; 2026-07-04 18:00 to 23:00 UTC; at Tempelhofer Feld]"
        " Bring something to grill",
    ]
    assert [m.kind for m in daemon.find(MessageReceived)] == ["other"] * 4
    assert replies["P2"].startswith("Echo: [contact card: Jane Doe")


def test_a_lid_without_the_phone_number_is_filed_by_what_an_earlier_message_taught(
    daemon: Daemon,
) -> None:
    """Issue 18.1: WhatsApp omits the phone number for some contacts (whatsmeow #1014)."""
    taught = daemon.message("hi, by LID with my number", chat=ALICE_LID, sender_alt=ALICE)
    _answered(daemon, taught)
    bare = daemon.message("and now without it", chat=ALICE_LID)
    assert _answered(daemon, bare)["chat"] == ALICE_LID
    # The owner types into that chat from the phone, RecipientAlt empty: a takeover.
    own = daemon.message("I'll take it from here", chat=ALICE_LID, sender=OWNER_JID, from_me=True)
    daemon.wait_event(MessageSkipped, msg_id=own, reason="takeover")
    paused = daemon.message("are you there?", chat=ALICE_LID)
    daemon.wait_event(MessageSkipped, msg_id=paused, reason="paused")

    received = {m.msg_id: m for m in daemon.find(MessageReceived)}
    assert [(received[m].chat, received[m].via) for m in (bare, own, paused)] == [
        (ALICE, ALICE_LID)
    ] * 3
    assert received[own].from_me


UNKNOWN_LID = "555555555555555@lid"


def test_a_lid_nothing_ties_to_a_chat_leaves_a_trace_without_content(daemon: Daemon) -> None:
    """The owner's own LID is not known yet (no status line): the message may be the
    owner's or a contact's whose LID is new, so that it came is recorded, nothing more."""
    lost = daemon.message("secret words", chat=UNKNOWN_LID, push_name="Mallory")
    skip = daemon.wait_event(MessageSkipped, msg_id=lost)
    daemon.stop()

    assert (skip.chat, skip.reason, skip.detail) == (UNKNOWN_LID, "unresolved_lid", "")
    assert daemon.find(MessageReceived, msg_id=lost) == []
    assert not [f for f in iter_store_files(daemon.store) if b"secret words" in f.read_bytes()]
    assert "Mallory" not in daemon.stderr
    store = ["--store", str(daemon.store)]
    stats = run_cli(["stats", *store], cwd=daemon.workdir, env=daemon.env)
    assert f"  {UNKNOWN_LID}  1" in stats.stdout.splitlines()
    forget = run_cli(["forget", "--chat", UNKNOWN_LID, *store], cwd=daemon.workdir, env=daemon.env)
    assert forget.returncode == 0, forget.stderr
    assert [r for r in daemon.events() if r.chat == UNKNOWN_LID] == []  # the marker: no chat


def test_when_every_monitored_lid_is_known_an_unknown_lid_is_nobodys(daemon: Daemon) -> None:
    daemon.send(type="status", state="connected", me_lid=OWNER_LID)
    daemon.wait_event(TransportStatus, me_lid=OWNER_LID)
    _answered(daemon, daemon.message("hi", chat=ALICE_LID, sender_alt=ALICE))
    daemon.message("spam", chat=UNKNOWN_LID)
    _answered(daemon, daemon.message("still here?", chat=ALICE))  # the spam line was read

    assert [r for r in daemon.events() if r.chat == UNKNOWN_LID] == []
