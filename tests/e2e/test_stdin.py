"""Bad stdin lines are reported and skipped; end of input stops nothing (docs/stdio.md)."""

from __future__ import annotations

import json
import signal

from events.model import MessageEdited, MessageReceived
from pipeline.daemon import MAX_TEXT_BYTES
from pipeline.transport._stdio import MAX_LINE_BYTES
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


def assert_one_stderr_line_each(daemon: Daemon, count: int) -> None:
    for number in range(1, count + 1):
        daemon.wait_stderr(f"stdin line {number}:")
    lines = daemon.stderr_lines()
    for number in range(1, count + 1):
        assert len([ln for ln in lines if f"stdin line {number}:" in ln]) == 1, number
    assert "Traceback" not in daemon.stderr


DEEP = b"[" * 10_000 + b"]" * 10_000


def test_invalid_utf8_and_deep_nesting_are_lines_skipped_not_crashes(daemon: Daemon):
    lines = [
        b'{"chat":"491702222222@s.whatsapp.net","text":"a\xffb"}',  # issue 9's own line
        b'{"chat":"491701111111@s.whatsapp.net","text":"a\xffb"}',
        b'{"chat":"491701111111@s.whatsapp.net","text":"x","push_name":"\xc3"}',
        b'{"chat":"491701111111@s.whatsapp.net","text":"x","id":"\xed\xa0\x80"}',
        b'{"type":"\xff","chat":"491701111111@s.whatsapp.net","text":"x"}',
        DEEP,
        b'{"chat":"491701111111@s.whatsapp.net","text":"x","mentions":' + DEEP + b"}",
        b'{"chat":"491709999999@s.whatsapp.net","text":"x","extra":' + DEEP + b"}",
    ]
    for line in lines:
        daemon.send_bytes(line)
    msg_id = daemon.message("still there?")

    assert daemon.next_sent()["reply_to"] == msg_id
    assert_one_stderr_line_each(daemon, len(lines))
    assert "not UTF-8" in daemon.wait_stderr("stdin line 1:")
    assert "nested too deeply" in daemon.wait_stderr("stdin line 7:")


def test_a_huge_message_is_recorded_cut_and_a_huge_line_is_skipped(daemon: Daemon):
    before = daemon.log.size_bytes()
    text = "é" * 2_500_000  # 5 MB of UTF-8
    ids = [daemon.message(text) for _ in range(4)]
    daemon.send_raw(json.dumps({"chat": ALICE, "text": "x" * (MAX_LINE_BYTES + 2**20)}))
    last = daemon.message("and a short one")

    daemon.send(type="edit", chat=ALICE, id=ids[0], text=text)
    quoting = daemon.message("see above", quoted={"id": ids[1], "text": text})

    received = [daemon.wait_event(MessageReceived, msg_id=i) for i in [*ids, last, quoting]]
    assert all(r.text == "é" * (MAX_TEXT_BYTES // 2) for r in received[:4])
    assert all(r.truncated_from == 5_000_000 for r in received[:4])
    assert (received[4].text, received[4].truncated_from) == ("and a short one", None)
    assert received[5].quoted is not None
    assert received[5].quoted.text == "é" * (MAX_TEXT_BYTES // 2)
    edited = daemon.wait_event(MessageEdited, msg_id=ids[0])
    assert (edited.text, edited.truncated_from) == ("é" * (MAX_TEXT_BYTES // 2), 5_000_000)
    limit = MAX_LINE_BYTES // 2**20
    assert f"longer than {limit} MiB, skipped" in daemon.wait_stderr("stdin line 5:")
    assert daemon.log.size_bytes() - before < 2 * 2**20
    assert daemon.alive


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
