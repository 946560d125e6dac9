"""Bad stdin lines are reported and skipped; end of input stops nothing (section 7)."""

from __future__ import annotations

import json
import signal

from tests.e2e.harness import ALICE, Daemon

BAD_LINES = [
    "this is not JSON",
    json.dumps(["a", "JSON", "array"]),
    json.dumps({"text": "no chat"}),
    json.dumps({"chat": ALICE}),
    json.dumps({"chat": "not a jid!", "text": "bad chat"}),
    json.dumps({"chat": ALICE, "text": 42}),
    json.dumps({"type": "presence", "chat": ALICE, "text": "hi"}),
]


def test_each_bad_line_is_one_stderr_line_and_the_next_is_answered(daemon: Daemon):
    for line in BAD_LINES:
        daemon.send_raw(line)
    msg_id = daemon.message("still there?")

    assert daemon.next_sent()["reply_to"] == msg_id
    for number in range(1, len(BAD_LINES) + 1):
        daemon.wait_stderr(f"stdin line {number}:")
    lines = daemon.stderr_lines()
    for number in range(1, len(BAD_LINES) + 1):
        assert len([ln for ln in lines if f"stdin line {number}:" in ln]) == 1, number
    assert f"stdin line {len(BAD_LINES) + 1}:" not in daemon.stderr
    assert "Traceback" not in daemon.stderr


def test_end_of_input_does_not_stop_the_daemon(daemon: Daemon, llm_server):
    gate = llm_server.hold()
    msg_id = daemon.message("slow question")
    assert llm_server.wait_for_requests(1)
    daemon.close_stdin()
    daemon.wait_stderr("stdin closed")
    gate.set()

    reply = daemon.next_sent()
    assert daemon.alive
    code, stderr = daemon.stop(signal.SIGTERM)

    assert reply["reply_to"] == msg_id
    assert code == 0, stderr[-2000:]
