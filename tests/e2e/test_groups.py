"""Groups as a member hears them (issue 21 items 2 and 3, docs/config.md ``groups``).

A mention group's turn carries what was said since the bot last answered,
marked as context; quoting the bot is a mention; and, with a listening window,
the person the bot just answered need not mention it again.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Any

from events.model import LlmRequested, MessageSkipped
from pipeline.llm._prompt import ANSWER_HEAD, CONTEXT_HEAD
from tests.e2e.conftest import MakeDaemon
from tests.e2e.harness import ALICE, BOB, GROUP, OWNER_JID, Daemon
from tests.llm_server import FakeLlmServer
from tests.media_files import voice_note, write

ROOT = Path(__file__).resolve().parents[2]
CAROL = "491703333333@s.whatsapp.net"
ALICE_LID = "201234567890123@lid"
SHIPPED_POLLING = {"interval_seconds": 5, "debounce_seconds": 2, "catch_up_minutes": 30}


def _say(daemon: Daemon, sender: str, name: str, text: str, **fields: Any) -> str:
    return daemon.message(text, chat=GROUP, sender=sender, push_name=name, **fields)


def _user_turn(server: FakeLlmServer, n: int) -> str:
    """The last user turn of the ``n``th request (Agent API ``input``)."""
    turns = [t for t in server.requests[n].json["input"] if t.get("role") == "user"]
    content = turns[-1]["content"]
    return str(content if isinstance(content, str) else content[0]["text"])


def test_a_mention_carries_what_the_group_said_and_a_quote_of_the_bot_triggers(
    make_daemon: MakeDaemon, llm_server: FakeLlmServer
) -> None:
    daemon = make_daemon({"polling": SHIPPED_POLLING})
    _say(daemon, BOB, "Bob", "Dinner on Friday at 7?")
    _say(daemon, CAROL, "Carol", "Fine, but where?")
    asked = _say(daemon, ALICE, "Alice", "@491700000000 any place for six?", mentions=[OWNER_JID])

    answer = daemon.next_sent(timeout=20)
    assert answer["reply_to"] == asked
    assert _user_turn(llm_server, 0) == "\n".join(
        [
            CONTEXT_HEAD,
            "Bob: Dinner on Friday at 7?",
            "Carol: Fine, but where?",
            "",
            ANSWER_HEAD,
            "Alice: @491700000000 any place for six?",
        ]
    )

    quoted = {"id": answer["id"], "text": answer["text"][:40], "sender": OWNER_JID}
    follow = _say(daemon, CAROL, "Carol", "Is it open late?", quoted=quoted)
    assert daemon.next_sent(timeout=20)["reply_to"] == follow
    assert CONTEXT_HEAD not in _user_turn(llm_server, 1)  # nothing said since the answer

    thanks = _say(daemon, BOB, "Bob", "thanks!")
    assert daemon.wait_event(MessageSkipped, msg_id=thanks).reason == "not_triggered"
    daemon.stop()

    replay = daemon.replay("--chat", "Family", "--recorded", "--json", timeout=60)
    assert replay.returncode == 0, replay.stderr
    assert [t["status"] for t in json.loads(replay.stdout)["turns"]] == ["OK", "OK"]


def test_the_person_just_answered_is_heard_without_a_mention_for_a_while(
    make_daemon: MakeDaemon,
) -> None:
    daemon = make_daemon({"groups": {"listen_after_mention_seconds": 60, "context_messages": 0}})
    asked = _say(daemon, ALICE, "Alice", "bot, a place for six?")
    assert daemon.next_sent()["reply_to"] == asked

    follow = _say(daemon, ALICE, "Alice", "and one that is open late?")
    assert daemon.next_sent()["reply_to"] == follow
    other = _say(daemon, BOB, "Bob", "I can drive")
    assert daemon.wait_event(MessageSkipped, msg_id=other).reason == "not_triggered"
    daemon.stop()


def test_the_question_sent_just_after_a_bare_mention_is_answered_with_it(
    make_daemon: MakeDaemon, llm_server: FakeLlmServer
) -> None:
    # Shipped defaults: a mention group, no listening window, a 2 s debounce.
    daemon = make_daemon({"polling": SHIPPED_POLLING})
    mention = _say(daemon, ALICE, "Alice", "@491700000000", mentions=[OWNER_JID])
    question = _say(daemon, ALICE, "Alice", "what's the weather in Rome tomorrow?")

    assert daemon.next_sent(timeout=20)["reply_to"] in {mention, question}
    assert not daemon.find(MessageSkipped, msg_id=question)
    # Nothing was said for context: the turn is the two messages, neither marked as such.
    assert _user_turn(llm_server, 0) == "\n".join(
        ["Alice: @491700000000", "Alice: what's the weather in Rome tomorrow?"]
    )


def test_the_question_sent_before_a_bare_mention_is_the_message_to_answer(
    make_daemon: MakeDaemon, llm_server: FakeLlmServer
) -> None:
    """ "The question", then "@bot" alone: shown as context, the model was told not to
    answer the very question it was called for."""
    daemon = make_daemon({"polling": SHIPPED_POLLING})
    _say(daemon, BOB, "Bob", "Dinner on Friday?")
    first = _say(daemon, ALICE, "Alice", "what's the weather in Rome")
    second = _say(daemon, ALICE, "Alice", "tomorrow?")
    _say(daemon, CAROL, "Carol", "good question")
    for early in (first, second):
        assert daemon.wait_event(MessageSkipped, msg_id=early).reason == "not_triggered"
    assert _bare_call(daemon, ALICE, llm_server) == "\n".join(
        [
            CONTEXT_HEAD,
            "Bob: Dinner on Friday?",
            "Carol: good question",
            "",
            ANSWER_HEAD,
            "Alice: what's the weather in Rome",
            "Alice: tomorrow?",
            "Alice: @491700000000",
        ]
    )
    # A mention with words of its own asks those: the earlier ones stay context.
    _say(daemon, ALICE, "Alice", "and in Milan?")
    own = _say(daemon, ALICE, "Alice", "@491700000000 is it sunny in Paris?", mentions=[OWNER_JID])
    assert daemon.next_sent(timeout=20)["reply_to"] == own
    assert _user_turn(llm_server, 1) == "\n".join(
        [
            CONTEXT_HEAD,
            "Alice: and in Milan?",
            "",
            ANSWER_HEAD,
            "Alice: @491700000000 is it sunny in Paris?",
        ]
    )
    daemon.stop()

    replay = daemon.replay("--chat", "Family", "--recorded", "--json", timeout=60)
    assert replay.returncode == 0, replay.stderr
    assert [t["status"] for t in json.loads(replay.stdout)["turns"]] == ["OK", "OK"]

    # A call an earlier version composed showed the question as context: still itself.
    old = [CONTEXT_HEAD, "Bob: Dinner on Friday?", "Alice: what's the weather in Rome"]
    old += ["Alice: tomorrow?", "Carol: good question", "", ANSWER_HEAD, "Alice: @491700000000"]
    for turn, statuses in (("\n".join(old), ["OK", "OK"]), ("other", ["DIFF", "OK"])):
        _rewrite_user_turn(daemon, turn)
        replay = daemon.replay("--chat", "Family", "--recorded", "--json", timeout=60)
        assert [t["status"] for t in json.loads(replay.stdout)["turns"]] == statuses


def _bare_call(daemon: Daemon, sender: str, server: FakeLlmServer) -> str:
    """Alice's "@bot" alone, answered: the user turn the model got for it."""
    call = _say(daemon, sender, "Alice", "@491700000000", mentions=[OWNER_JID])
    assert daemon.next_sent(timeout=20)["reply_to"] == call
    return _user_turn(server, len(server.requests) - 1)


def _rewrite_user_turn(daemon: Daemon, text: str) -> None:
    """The first call's user turn, as if the agent had recorded ``text`` (the second
    call carries it as the session's first turn)."""
    [first, second] = [r.seq for r in daemon.events() if isinstance(r.event, LlmRequested)]
    with contextlib.closing(sqlite3.connect(daemon.store / "events.db")) as conn, conn:
        for seq, turn in ((first, "#-1"), (second, "1")):
            conn.execute(
                f"UPDATE events SET body=json_set(body, '$.messages[{turn}].content', ?)"
                " WHERE seq=?",
                (text, seq),
            )


def test_a_bare_call_after_a_voice_note_asks_about_it_whichever_id_it_came_under(
    make_daemon: MakeDaemon, llm_server: FakeLlmServer, tmp_path: Path
) -> None:
    """Alice's question is a voice note, sent under her LID alone (WhatsApp left out
    her number), and her "@bot" comes under her number: the call is about the voice
    note, not about what she typed before. Her first message showed both ids."""
    daemon = make_daemon({"polling": SHIPPED_POLLING})
    _say(daemon, ALICE_LID, "Alice", "hi all", sender_alt=ALICE)
    _say(daemon, BOB, "Bob", "Dinner on Friday?")
    note = write(tmp_path, "question.ogg", voice_note())
    media = {"kind": "voice", "path": str(note), "mime": "audio/ogg", "seconds": 7}
    voice = daemon.message("", chat=GROUP, sender=ALICE_LID, push_name="Alice", media=media)
    assert daemon.wait_event(MessageSkipped, msg_id=voice).reason == "not_triggered"
    assert _bare_call(daemon, ALICE, llm_server) == "\n".join(
        [
            CONTEXT_HEAD,
            "Alice: hi all",
            "Bob: Dinner on Friday?",
            "",
            ANSWER_HEAD,
            "Alice: [voice note, 7 s, not transcribed]",
            "Alice: @491700000000",
        ]
    )
    daemon.stop()

    replay = daemon.replay("--chat", "Family", "--recorded", "--json", timeout=60)
    assert replay.returncode == 0, replay.stderr
    assert [t["status"] for t in json.loads(replay.stdout)["turns"]] == ["OK"]
