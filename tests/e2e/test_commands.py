"""Owner commands over stdio: answered in the owner's own chat with no LLM call, pauses
recorded in the log (README "Owner commands")."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from events.model import (
    ChatPaused,
    ChatResumed,
    LlmRequested,
    MessageReceived,
    MessageSkipped,
    ReplyPlanned,
    ReplySent,
)
from tests.e2e.conftest import MakeDaemon
from tests.e2e.harness import ALICE, GROUP, OWNER_JID, Daemon, run_cli
from tests.llm_server import FakeLlmServer

ROOT = Path(__file__).resolve().parents[2]
# The intervals app.json ships with (a 5 s poll, a 2 s debounce).
SHIPPED = {"polling": {"interval_seconds": 5.0, "debounce_seconds": 2.0}}


def _command(daemon: Daemon, text: str) -> dict[str, Any]:
    """The owner types ``text`` in the own chat; its answer, sent and recorded."""
    msg_id = daemon.message(text, chat=OWNER_JID, from_me=True)
    answer = daemon.next_sent()
    assert (answer["chat"], answer["purpose"], answer["reply_to"]) == (
        OWNER_JID,
        "command",
        msg_id,
    )
    daemon.wait_event(ReplySent, wa_id=answer["id"])
    return answer


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _no_call_for_commands(daemon: Daemon) -> None:
    commands = {e.msg_id for e in daemon.find(MessageReceived, chat=OWNER_JID)}
    asked = {m for r in daemon.find(LlmRequested) for m in r.trigger_ids}
    assert not commands & asked


def test_pause_and_resume_with_the_shipped_intervals(
    make_daemon: MakeDaemon, llm_server: FakeLlmServer
) -> None:
    daemon = make_daemon(SHIPPED)

    status = _command(daemon, "/status")
    assert status["text"].startswith("Status at ")
    assert "Connection: connected" in status["text"]
    assert "Last error: none" in status["text"]

    paused = _command(daemon, "/pause alice 30m")
    assert paused["text"].startswith("Paused Alice until ")
    (pause,) = daemon.find(ChatPaused, chat=ALICE)
    assert pause.until is not None

    waiting = daemon.message("are you there?")
    daemon.wait_stderr('"chat_paused"')  # the agent decided: it waits for the pause
    assert not daemon.find(LlmRequested, chat=ALICE)
    assert not daemon.find(MessageSkipped, msg_id=waiting)

    resumed = _command(daemon, "/resume Alice")
    assert resumed["text"] == "Resumed Alice. 1 message that waited will be answered now."
    daemon.wait_event(ChatResumed, chat=ALICE)
    answer = daemon.next_sent()
    assert (answer["chat"], answer["purpose"], answer["reply_to"]) == (ALICE, "reply", waiting)

    assert len(llm_server.requests) == 1  # Alice's turn; no command asked the LLM
    _no_call_for_commands(daemon)

    # audit of Alice shows the pause and the resume among her turns.
    args = ["audit", "--chat", "Alice", "--store", str(daemon.store)]
    audit = run_cli(args, cwd=daemon.workdir, env=daemon.env)
    assert audit.returncode == 0, audit.stderr
    assert f"paused by you (/pause) until {_iso(pause.until)}" in audit.stdout
    assert "resumed by you (/resume)" in audit.stdout


def test_a_message_that_waits_too_long_is_skipped_as_paused(make_daemon: MakeDaemon) -> None:
    daemon = make_daemon({"polling": {"catch_up_minutes": 0.02}})  # 1.2 s

    _command(daemon, "/pause Alice")
    waiting = daemon.message("hello?")

    skipped = daemon.wait_event(MessageSkipped, msg_id=waiting)
    assert skipped.reason == "paused"
    resumed = _command(daemon, "/resume alice")
    assert resumed["text"].startswith("Resumed Alice.")
    daemon.expect_no_sent(within=0.5)
    assert not daemon.find(LlmRequested, chat=ALICE)


def test_pause_all_unknown_commands_and_the_same_text_from_alice(
    make_daemon: MakeDaemon, llm_server: FakeLlmServer
) -> None:
    daemon = make_daemon()

    help_text = _command(daemon, "/frobnicate")["text"]
    assert help_text.startswith("Unknown command /frobnicate.")
    assert "/pause NAME|all" in help_text
    assert "No chat named 'Carol'" in _command(daemon, "/pause Carol")["text"]
    assert _command(daemon, "/reminders")["text"] == "No reminders pending."

    # From Alice, a command's words are an ordinary message: an LLM turn.
    asked = daemon.message("/status")
    reply = daemon.next_sent()
    assert (reply["chat"], reply["purpose"], reply["reply_to"]) == (ALICE, "reply", asked)
    assert daemon.find(LlmRequested, chat=ALICE)

    everything = _command(daemon, "/pause all 2h")
    assert everything["text"].startswith("Paused Alice, Family until ")
    assert {p.chat for p in daemon.find(ChatPaused)} == {ALICE, GROUP}
    status = _command(daemon, "/status")["text"]
    assert "Paused: Alice until " in status
    assert "Paused: Family until " in status
    assert "Today: 1 reply, $" in status

    _command(daemon, "/resume all")
    assert {r.chat for r in daemon.find(ChatResumed)} == {ALICE, GROUP}
    _no_call_for_commands(daemon)
    assert len(daemon.find(ReplyPlanned, purpose="command")) == 6

    # audit shows each command and its answer.
    args = ["audit", "--chat", "Me", "--store", str(daemon.store)]
    audit = run_cli(args, cwd=daemon.workdir, env=daemon.env)
    assert audit.returncode == 0, audit.stderr
    assert audit.stdout.count("owner command, answered without an LLM call") == 6
    assert "/pause all 2h" in audit.stdout
    assert "command sent" in audit.stdout or "command planned" in audit.stdout


def test_status_while_the_account_is_restricted(make_daemon: MakeDaemon) -> None:
    daemon = make_daemon()
    daemon.send(type="status", state="restricted", until=None, code=463, detail="timelock")
    alert = daemon.next_sent()  # the owner is told once; then the command goes through too
    assert alert["purpose"] == "alert"

    status = _command(daemon, "/status")["text"]
    assert "Restriction (error 463): sends to others wait until " in status


def test_a_pause_survives_a_restart(make_daemon: MakeDaemon) -> None:
    daemon = make_daemon()
    _command(daemon, "/pause Alice")
    daemon.stop()

    daemon.restart()
    waiting = daemon.message("still paused?")
    daemon.wait_stderr('"chat_paused"')  # the new process read the pause from the log
    assert not daemon.find(LlmRequested, chat=ALICE)

    _command(daemon, "/resume Alice")
    answer = daemon.next_sent()
    assert (answer["chat"], answer["reply_to"]) == (ALICE, waiting)


def test_replay_finds_no_llm_turn_in_a_command(make_daemon: MakeDaemon) -> None:
    daemon = make_daemon()
    note = daemon.message("remind me what a pause does", chat=OWNER_JID, from_me=True)
    assert daemon.next_sent()["reply_to"] == note
    _command(daemon, "/status")
    _command(daemon, "/pause Alice 1h")
    daemon.stop()

    done = daemon.replay("--chat", "Me", "--recorded", "--json")
    assert done.returncode == 0, done.stderr
    turns = json.loads(done.stdout)["turns"]
    # The note was an LLM turn, replayed as recorded; the commands were none.
    assert [(t["user"], t["status"]) for t in turns] == [("remind me what a pause does", "OK")]
