"""forget beside a running daemon and on a stopped one: no byte of the chat stays in the store.

The store is scanned file by file as raw bytes (``events.db`` and its WAL, the
snapshot table inside it, logs, replay experiments and their response cache,
media) for a marker only the forgotten chat's messages carry.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from events.backends import open_reader
from events.model import (
    Compacted,
    LlmCompleted,
    LlmFailed,
    LlmRequested,
    MessageReceived,
    MessageSkipped,
    OwnerAlerted,
    ReplyPlanned,
    ReplySent,
    SessionStarted,
)
from pipeline.tools.web import Console
from tests.conversation import Recording, run_replay
from tests.e2e.conftest import MakeDaemon
from tests.e2e.harness import ALICE, BOB, OWNER_JID, Daemon, base_config, entities, run_cli
from tests.llm_server import FakeLlmServer, Reply

ALICE_LID = "123456789012345@lid"
MARKER = "zebra-quartz-7731"  # only Alice ever writes it
KEPT = "walrus-ochre-4402"  # only Bob writes it: must survive
BOB_ENTITY = {"type": "user", "phone": "491702222222", "name": "Bob"}
VERBOSE = {"logging": {"level": "DEBUG"}}


def _holding(store: Path, text: str) -> list[str]:
    """The store's files whose raw bytes contain ``text``.

    Read by a child process: closing a descriptor of ``events.db`` here would
    drop the POSIX locks of this process's own connection to it (the harness's).
    """
    found = subprocess.run(
        [sys.executable, "-c", _SCAN, str(store), text],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return found.stdout.split()


_SCAN = """
import sys
from pathlib import Path
store, needle = Path(sys.argv[1]), sys.argv[2].encode()
for path in sorted(p for p in store.rglob("*") if p.is_file()):
    if needle in path.read_bytes():
        print(path.relative_to(store))
"""


def _forget(daemon: Daemon, chat: str) -> str:
    done = run_cli(
        ["forget", "--chat", chat, "--store", str(daemon.store)],
        cwd=daemon.workdir,
        env=dict(os.environ),
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _answered(daemon: Daemon, msg_id: str) -> None:
    assert daemon.next_sent()["reply_to"] == msg_id


def _talk(daemon: Daemon) -> None:
    """Alice writes by her LID and by phone and sends a document, Bob by phone."""
    _answered(daemon, daemon.message(f"My code word is {MARKER}.", chat=ALICE_LID, chat_alt=ALICE))
    _answered(daemon, daemon.message(f"Repeat {MARKER} twice.", chat=ALICE))
    notes = base64.b64encode(f"My notes: {MARKER}".encode()).decode()
    document = {"kind": "document", "data": notes, "file_name": "notes.txt"}
    _answered(daemon, daemon.message("Read this", chat=ALICE, media=document))
    _answered(daemon, daemon.message(f"Mine is {KEPT}.", chat=BOB))


def _with_bob(make_daemon: MakeDaemon) -> Daemon:
    people = [*base_config()["monitored_entities"], BOB_ENTITY]
    return make_daemon({**VERBOSE, "monitored_entities": people})


def test_forgetting_a_chat_while_running_leaves_no_memory_of_it(daemon: Daemon):
    first = daemon.message("My name is Alice and I like Rome.")
    assert daemon.next_sent()["reply_to"] == first

    assert _forget(daemon, "Alice").startswith(f"forgot {ALICE}: ")
    assert not daemon.find(MessageReceived)

    second = daemon.message("What do I like?")
    assert daemon.next_sent()["reply_to"] == second
    assert [c.reason for c in daemon.find(Compacted)] == ["forget"]
    assert [s.reason for s in daemon.find(SessionStarted)] == ["new"]
    requested = daemon.wait_event(LlmRequested, trigger_ids=[second])
    assert [m.role for m in requested.messages] == ["system", "user"]


def test_the_answer_to_a_chat_forgotten_while_its_call_was_out_is_dropped(
    make_daemon: MakeDaemon, llm_server: FakeLlmServer
):
    # Polls far apart: the answer must not wait for one to learn of the forget.
    daemon = make_daemon({"polling": {"interval_seconds": 30}})
    gate = llm_server.hold()
    first = daemon.message(f"My code word is {MARKER}.")
    daemon.wait_event(LlmRequested, trigger_ids=[first])
    assert llm_server.wait_for_requests(1)
    assert _forget(daemon, "Alice").startswith(f"forgot {ALICE}: ")
    gate.set()  # the answer, echoing the marker, arrives after the forget
    dropped = daemon.wait_stderr("llm_answer_dropped")
    assert MARKER not in dropped
    second = daemon.message("Hello again.")
    assert daemon.next_sent()["reply_to"] == second  # never the first's answer
    [completed] = daemon.find(LlmCompleted)
    assert completed.call_id == daemon.wait_event(LlmRequested, trigger_ids=[second]).call_id
    daemon.stop()
    assert _holding(daemon.store, MARKER) == []


def test_forget_by_the_other_id_leaves_no_byte_of_the_chat_in_the_store(
    make_daemon: MakeDaemon, llm_server: FakeLlmServer
):
    daemon = _with_bob(make_daemon)
    _talk(daemon)
    recording = Recording(daemon.workdir, 0, ())
    for chat in ("Alice", "Bob"):
        tried = run_replay(["--chat", chat, "--prompt", "Be brief."], recording, llm_server)
        assert tried.returncode == 0, tried.stderr
    daemon.stop()  # its last snapshot holds Alice's session
    assert _holding(daemon.store, MARKER)  # the scan sees what is there

    said = _forget(daemon, ALICE_LID)

    assert said.startswith(f"forgot {ALICE}: "), said
    assert _holding(daemon.store, MARKER) == []
    assert "events.db" in _holding(daemon.store, KEPT)
    assert any(name.startswith("replays/") for name in _holding(daemon.store, KEPT))
    # The daemon starts on what is left and knows nothing of Alice.
    daemon.restart()
    again = daemon.message("What is my code word?", chat=ALICE)
    _answered(daemon, again)
    requested = daemon.wait_event(LlmRequested, trigger_ids=[again])
    assert [m.role for m in requested.messages] == ["system", "user"]


def test_forget_beside_a_running_daemon_leaves_no_byte_once_it_stops(make_daemon: MakeDaemon):
    daemon = _with_bob(make_daemon)
    _talk(daemon)

    _forget(daemon, ALICE)
    # The daemon goes on writing (a snapshot at its stop among it): nothing comes back.
    _answered(daemon, daemon.message("And now?", chat=BOB))
    daemon.stop()

    assert _holding(daemon.store, MARKER) == []
    assert "events.db" in _holding(daemon.store, KEPT)


def _answer_of(daemon: Daemon, msg_id: str, *purposes: str) -> dict[str, dict[str, Any]]:
    """The reply to ``msg_id`` and a line of each of ``purposes`` (in any order: the owner's
    chat and the asker's are sent to side by side), by purpose."""
    lines: dict[str, dict[str, Any]] = {}
    while "reply" not in lines or set(purposes) - set(lines):
        line = daemon.next_sent()
        assert line["purpose"] in (*purposes, "reply"), line
        assert line["purpose"] != "reply" or line["reply_to"] == msg_id, line
        lines[line["purpose"]] = line
    return lines


def test_forget_leaves_no_copy_of_a_debugged_chat_in_the_owner_s_chat(
    make_daemon: MakeDaemon, llm_server: FakeLlmServer
):
    """Alice's entity has ``debug: true``: her words are also in the owner's chat."""
    people = [*entities(Alice={"debug": True})["monitored_entities"], BOB_ENTITY]
    daemon = make_daemon({**VERBOSE, "monitored_entities": people})
    first = daemon.message(f"My code word is {MARKER}.", chat=ALICE_LID, chat_alt=ALICE)
    note = _answer_of(daemon, first, "debug")["debug"]
    assert MARKER in note["text"]
    # WhatsApp hands the bot's own message in the owner's chat back: skipped as an echo.
    echo = daemon.message(note["text"], chat=OWNER_JID, id=note["id"], from_me=True)
    daemon.wait_event(MessageSkipped, msg_id=echo, reason="echo")
    # An API that quotes the input in its error: the owner's alert quotes Alice too.
    refused = {"error": {"message": f"cannot take '{MARKER}'", "type": "invalid_request_error"}}
    llm_server.script(Reply(status=400, body=refused))
    failing = daemon.message(f"Again: {MARKER}", chat=ALICE)
    alert = daemon.wait_event(OwnerAlerted, kind="llm_failing")
    assert MARKER in alert.detail
    _answer_of(daemon, daemon.message(f"Mine is {KEPT}.", chat=BOB), "debug", "alert")
    tried = run_replay(["--chat", "Bob", "--prompt", "Be brief."], _recording(daemon), llm_server)
    assert tried.returncode == 0, tried.stderr
    assert daemon.find(LlmFailed, final=True)[0].chat == ALICE
    assert failing in {m.msg_id for m in daemon.find(MessageReceived)}
    daemon.stop()
    assert _holding(daemon.store, MARKER)  # the scan sees what is there
    console = Console(daemon.store)  # the web console, open beside it
    assert _searchable(console, MARKER) == {ALICE, OWNER_JID}

    said = _forget(daemon, "Alice")

    assert said.startswith(f"forgot {ALICE}: "), said
    # Two notes and the alert, each planned and sent, the OwnerAlerted, the echo and its skip.
    assert ", and 9 elsewhere quoting it" in said
    assert _searchable(console, MARKER) == set()
    assert _searchable(console, KEPT) == {BOB}
    console.close()
    assert _holding(daemon.store, MARKER) == []
    assert "events.db" in _holding(daemon.store, KEPT)
    with open_reader(daemon.store) as log:
        owner = [r.event for r in log.read(chats=[OWNER_JID, ""])]
    assert [e for e in owner if isinstance(e, ReplyPlanned) and e.purpose == "startup"]
    assert not [
        e
        for e in owner
        if isinstance(e, (ReplySent, MessageReceived, MessageSkipped))
        and getattr(e, "msg_id", None) == note["id"]
    ]


def _searchable(console: Console, text: str) -> set[str]:
    """The chats whose messages the console's search finds ``text`` in."""
    with console.current() as snap:
        return {t.chat for t in snap.summary.texts if text in t.text}


def _recording(daemon: Daemon) -> Recording:
    return Recording(daemon.workdir, 0, ())
