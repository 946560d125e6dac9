"""Reminders over stdio: the test LLM server scripts the model's calls, the daemon
records them, and the scheduler sends each reminder once, across kill -9 and
downtime (docs/llm.md, "Reminders")."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from events.model import (
    ReminderCancelled,
    ReminderFired,
    ReminderSet,
    ReplySent,
    TransportStatus,
)
from tests.e2e.conftest import MakeDaemon
from tests.e2e.harness import ALICE, OWNER_JID, Daemon, run_cli
from tests.llm_server import FakeLlmServer, Reply, agent_calls


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


def _outputs(body: dict[str, Any]) -> list[Any]:
    """The tool results a request sends back to the model (Agent API)."""
    return [
        json.loads(i["output"]) for i in body["input"] if i.get("type") == "function_call_output"
    ]


def _answered(daemon: Daemon, text: str) -> None:
    """Alice writes ``text``; its answer is sent and recorded so (a kill -9 then owes none)."""
    daemon.message(text)
    daemon.wait_event(ReplySent, wa_id=daemon.next_sent()["id"])


def _command(daemon: Daemon, text: str) -> str:
    daemon.message(text, chat=OWNER_JID, from_me=True)
    answer = daemon.next_sent()
    assert (answer["chat"], answer["purpose"]) == (OWNER_JID, "command")
    daemon.wait_event(ReplySent, wa_id=answer["id"])
    return str(answer["text"])


def test_a_reminder_is_confirmed_then_fires_once_across_kill9(
    daemon: Daemon, llm_server: FakeLlmServer
) -> None:
    at = _iso(time.time() + 6)
    call = ("set_reminder", {"at": at, "text": "Stretch your legs"})
    llm_server.script(Reply(body=agent_calls(call)))
    msg_id = daemon.message("Remind me to stretch in a few seconds")

    confirmed = daemon.next_sent()

    assert (confirmed["reply_to"], confirmed["purpose"]) == (msg_id, "reply")
    (reminder,) = daemon.find(ReminderSet, chat=ALICE)
    assert reminder.text == "Stretch your legs"
    # The model got the reminder's id and its time, with the owner's offset, back.
    (output,) = _outputs(llm_server.requests[1].json)
    assert output == {"id": reminder.reminder_id, "at": output["at"]}
    assert datetime.fromisoformat(output["at"]) == datetime.fromisoformat(at)
    assert "+01:00" in output["at"] or "+02:00" in output["at"]  # vitality.timezone
    assert reminder.reminder_id in _command(daemon, "/reminders")

    daemon.kill9()  # before it is due
    daemon.restart()
    fired = daemon.next_sent(timeout=20)
    daemon.wait_event(ReplySent, wa_id=fired["id"])
    daemon.kill9()  # after it went: the next start owes nothing
    daemon.restart()
    daemon.expect_no_sent(within=1.0)

    assert (fired["chat"], fired["purpose"], fired["text"]) == (
        ALICE,
        "reminder",
        "Stretch your legs",
    )
    (record,) = daemon.find(ReminderFired)
    assert (record.reminder_id, record.missed) == (reminder.reminder_id, False)
    assert [s for s in daemon.all_sent if s["purpose"] == "reminder"] == [fired]
    assert _command(daemon, "/reminders") == "No reminders pending."
    audit = run_cli(
        ["audit", "--chat", "Alice", "--store", str(daemon.store)],
        cwd=daemon.workdir,
        env=daemon.env,
    )
    assert audit.returncode == 0, audit.stderr
    assert f"reminder {reminder.reminder_id} set" in audit.stdout
    assert f"reminder {reminder.reminder_id} fired" in audit.stdout


def test_reminders_due_while_down_fire_or_are_missed_and_a_cancelled_one_never_fires(
    daemon: Daemon, llm_server: FakeLlmServer
) -> None:
    later = _iso(time.time() + 3600)
    llm_server.script(
        Reply(body=agent_calls(("set_reminder", {"at": later, "text": "stays"}), ids="a")),
        Reply(body=agent_calls(("set_reminder", {"at": later, "text": "goes"}), ids="b")),
    )
    _answered(daemon, "Remind me in an hour")
    _answered(daemon, "And another one")
    gone = daemon.find(ReminderSet, text="goes")[0].reminder_id
    llm_server.script(Reply(body=agent_calls(("cancel_reminder", {"id": gone}), ids="c")))
    _answered(daemon, "Cancel the second")
    (cancelled,) = daemon.find(ReminderCancelled, chat=ALICE)
    assert cancelled.reminder_id == gone
    assert _outputs(llm_server.requests[-1].json) == [{"ok": True, "cancelled": gone}]

    daemon.kill9()
    now = time.time()
    # What a bot down for two hours finds: one due 2 h ago (catch_up_minutes is 30),
    # one due a minute ago.
    daemon.log.append(
        ReminderSet(chat=ALICE, reminder_id="ROLD", at=now - 7200, text="water the plants"),
        ReminderSet(chat=ALICE, reminder_id="RNEW", at=now - 60, text="take the cake out"),
    )
    daemon.restart()
    first, second = daemon.next_sent(timeout=10), daemon.next_sent(timeout=10)
    daemon.expect_no_sent(within=0.5)

    assert first["purpose"] == second["purpose"] == "reminder"
    assert first["text"].startswith("Missed reminder (due ")
    assert first["text"].endswith(", while I was offline): water the plants")
    assert "\n" not in first["text"]
    assert second["text"] == "take the cake out"
    fired = {f.reminder_id: f.missed for f in daemon.find(ReminderFired)}
    assert fired == {"ROLD": True, "RNEW": False}
    pending = _command(daemon, "/reminders")
    assert pending.startswith("1 reminder pending:\n")
    assert "Alice: stays" in pending
    assert "goes" not in pending


def test_a_reminder_due_while_whatsapp_is_away_goes_as_missed_once_too_late(
    make_daemon: MakeDaemon,
) -> None:
    """Fired on time, held by the outage past catch_up_minutes (3 s here): the chat gets
    the missed line a reminder due while the bot was down gets, never the bare text."""
    daemon = make_daemon({"polling": {"catch_up_minutes": 0.05}})
    daemon.send(type="status", state="disconnected", detail="phone offline")
    daemon.wait_event(TransportStatus, state="disconnected")
    due = time.time() + 1
    daemon.log.append(ReminderSet(chat=ALICE, reminder_id="RAWAY", at=due, text="take the pill"))
    daemon.wait_event(ReminderFired, reminder_id="RAWAY")
    time.sleep(max(0.0, due + 3.5 - time.time()))
    daemon.send(type="status", state="connected")
    sent = daemon.next_sent(timeout=10)
    assert sent["purpose"] == "reminder"
    assert sent["text"].startswith("Missed reminder (due ")
    assert sent["text"].endswith(", while I was offline): take the pill")
    daemon.expect_no_sent(within=0.5)
