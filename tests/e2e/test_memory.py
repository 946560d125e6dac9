"""Memory over stdio: a fact the model keeps (scripted by the test LLM server) is in
the chat's system prompt in later sessions and after a restart, and ``forget --chat``
takes the chat's facts and reminders (docs/llm.md, "Memory")."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

from events.model import FactRemembered, LlmRequested, ReminderSet, ReplySent
from tests.e2e.harness import ALICE, OWNER_JID, Daemon, run_cli
from tests.llm_server import FakeLlmServer, Reply, agent_calls, untimed


def _asked(daemon: Daemon, text: str) -> LlmRequested:
    msg_id = daemon.message(text)
    sent = daemon.next_sent()
    daemon.wait_event(ReplySent, wa_id=sent["id"])
    return daemon.wait_event(LlmRequested, trigger_ids=[msg_id])


def test_a_fact_is_in_later_sessions_and_forget_chat_takes_it_with_the_reminders(
    daemon: Daemon, llm_server: FakeLlmServer
) -> None:
    later = datetime.fromtimestamp(time.time() + 3600, UTC).isoformat(timespec="seconds")
    llm_server.script(
        Reply(
            body=agent_calls(
                ("remember", {"fact": "Alice is vegetarian"}),
                ("set_reminder", {"at": later, "text": "buy lentils"}),
            )
        )
    )
    first = _asked(daemon, "I am vegetarian, remind me to buy lentils in an hour")
    assert "Facts:" not in first.messages[0].content
    (fact,) = daemon.find(FactRemembered, chat=ALICE)
    assert fact.fact == "Alice is vegetarian"
    assert daemon.find(ReminderSet, chat=ALICE)

    reset_id = daemon.message("/reset")
    assert daemon.next_sent()["reply_to"] == reset_id
    daemon.stop()
    daemon.restart()
    after = _asked(daemon, "What should I cook tonight?")

    assert after.session_id != first.session_id
    system = untimed(after.messages[0].content)
    assert system.endswith("\n\nFacts:\n- Alice is vegetarian")
    assert system.startswith(untimed(first.messages[0].content))
    assert llm_server.requests[-1].json["instructions"] == after.messages[0].content

    done = run_cli(
        ["forget", "--chat", "Alice", "--store", str(daemon.store)],
        cwd=daemon.workdir,
        env=dict(os.environ),
    )
    assert done.returncode == 0, done.stderr
    forgotten = _asked(daemon, "And tomorrow?")

    assert "Facts:" not in forgotten.messages[0].content
    daemon.message("/reminders", chat=OWNER_JID, from_me=True)
    assert daemon.next_sent()["text"] == "No reminders pending."
