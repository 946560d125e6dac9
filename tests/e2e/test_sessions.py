"""Conversation memory: context, /reset, expiry and the bounds of docs/config.md."""

from __future__ import annotations

import itertools
import time

from events.model import ChatTurn, LlmRequested, SessionStarted
from tests.e2e.harness import ALICE, ALICE_PERSONA, ALICE_PROMPT, Daemon
from tests.llm_server import untimed

SYSTEM = ChatTurn("system", f"{ALICE_PERSONA}\n\n{ALICE_PROMPT}")


def _roles_alternate(turns: list[ChatTurn]) -> bool:
    roles = [t.role for t in turns]
    chat = roles[1:]
    return (
        roles[0] == "system"
        and chat[-1] == "user"
        and all(a != b for a, b in itertools.pairwise(chat))
    )


def _sent(request: LlmRequested) -> list[ChatTurn]:
    """The request's turns, its system turn without the time it was composed at."""
    system, *rest = request.messages
    return [ChatTurn("system", untimed(system.content)), *rest]


def _ask(daemon: Daemon, text: str) -> LlmRequested:
    msg_id = daemon.message(text)
    assert daemon.next_sent()["reply_to"] == msg_id
    return daemon.wait_event(LlmRequested, trigger_ids=[msg_id])


def test_the_second_message_carries_the_first_turn_as_context(daemon: Daemon):
    first = _ask(daemon, "Hotels in Rome?")
    second = _ask(daemon, "And in Florence?")

    assert second.session_id == first.session_id
    assert _sent(second)[0] == SYSTEM
    assert [t.role for t in second.messages] == ["system", "user", "assistant", "user"]
    assert second.messages[1] == ChatTurn("user", "Hotels in Rome?")
    assert second.messages[2].content.startswith("Echo: Hotels in Rome?")
    assert second.messages[3] == ChatTurn("user", "And in Florence?")
    assert _roles_alternate(second.messages)
    assert len(daemon.find(SessionStarted, chat=ALICE)) == 1


def test_reset_starts_a_new_session_without_context(daemon: Daemon):
    first = _ask(daemon, "Hotels in Rome?")
    reset_id = daemon.message("/reset")
    assert daemon.next_sent()["reply_to"] == reset_id
    after = _ask(daemon, "And in Florence?")

    reset = daemon.find(SessionStarted, chat=ALICE, reason="reset")
    assert len(reset) == 1
    assert after.session_id == reset[0].session_id != first.session_id
    assert _sent(after) == [SYSTEM, ChatTurn("user", "And in Florence?")]
    assert daemon.find(LlmRequested, trigger_ids=[reset_id]) == []


def test_an_idle_session_expires_after_ttl(make_daemon):
    ttl_seconds = 0.6
    d = make_daemon({"session_memory": {"mode": "idle", "ttl_minutes": ttl_seconds / 60}})
    first = _ask(d, "Hotels in Rome?")
    # Expiry is a matter of the clock: wait out the ttl after the last activity.
    last_activity = max(r.ts for r in d.events() if r.chat == ALICE)
    time.sleep(max(0.0, last_activity + ttl_seconds + 0.1 - time.time()))
    second = _ask(d, "And in Florence?")

    started = d.find(SessionStarted, chat=ALICE)
    assert [s.reason for s in started] == ["new", "expired"]
    assert second.session_id == started[1].session_id != first.session_id
    assert _sent(second) == [SYSTEM, ChatTurn("user", "And in Florence?")]


def test_max_messages_keeps_only_the_latest_turns(make_daemon):
    d = make_daemon({"session_memory": {"max_messages": 2}})
    _ask(d, "one")
    _ask(d, "two")
    third = _ask(d, "three")

    assert [t.role for t in third.messages] == ["system", "user", "assistant", "user"]
    assert third.messages[1] == ChatTurn("user", "two")
    assert third.messages[2].content.startswith("Echo: two")
    assert third.messages[3] == ChatTurn("user", "three")


def test_long_input_is_cut_with_a_visible_marker(make_daemon):
    d = make_daemon({"limits": {"max_input_chars": 40}})
    text = "x" * 30 + "y" * 30
    request = _ask(d, text)

    user = request.messages[-1].content
    assert user.startswith("x" * 30 + "y" * 10)
    assert "y" * 11 not in user
    assert "cut" in user[40:]
