"""forget beside a running daemon: the daemon drops what went and the chat starts afresh."""

from __future__ import annotations

import os

from events.model import Compacted, LlmRequested, MessageReceived, SessionStarted
from tests.e2e.harness import ALICE, Daemon, run_cli


def test_forgetting_a_chat_while_running_leaves_no_memory_of_it(daemon: Daemon):
    first = daemon.message("My name is Alice and I like Rome.")
    assert daemon.next_sent()["reply_to"] == first

    done = run_cli(
        ["forget", "--chat", "Alice", "--store", str(daemon.store)],
        cwd=daemon.workdir,
        env=dict(os.environ),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"forgot {ALICE}: ")
    assert not daemon.find(MessageReceived)

    second = daemon.message("What do I like?")
    assert daemon.next_sent()["reply_to"] == second
    assert [c.reason for c in daemon.find(Compacted)] == ["forget"]
    assert [s.reason for s in daemon.find(SessionStarted)] == ["new"]
    requested = daemon.wait_event(LlmRequested, trigger_ids=[second])
    assert [m.role for m in requested.messages] == ["system", "user"]
