"""app.json edits take effect while running; bad edits change nothing (docs/config.md)."""

from __future__ import annotations

import hashlib
import json

import pytest

from events.model import ConfigLoaded, LlmRequested, SessionStarted
from tests.e2e.harness import (
    ALICE_PERSONA,
    Daemon,
    base_config,
    deep_merge,
    entities,
    write_atomically,
)
from tests.llm_server import FakeLlmServer, untimed

NEW_PROMPT = "Always answer in rhyme."


def test_a_changed_prompt_is_used_from_the_next_message(daemon: Daemon):
    first_hash = hashlib.sha256(daemon.config.read_bytes()).hexdigest()
    edited = deep_merge(base_config(), entities(Alice={"prompt": NEW_PROMPT}))
    write_atomically(daemon.config, json.dumps(edited).encode())
    new_hash = hashlib.sha256(daemon.config.read_bytes()).hexdigest()

    loaded = daemon.wait_event(ConfigLoaded, hash=new_hash)
    msg_id = daemon.message("Paris or Rome?")
    assert daemon.next_sent()["reply_to"] == msg_id

    assert [c.hash for c in daemon.find(ConfigLoaded)] == [first_hash, new_hash]
    assert loaded.config["monitored_entities"][0]["prompt"] == NEW_PROMPT
    requested = daemon.wait_event(LlmRequested, trigger_ids=[msg_id])
    assert untimed(requested.messages[0].content) == f"{ALICE_PERSONA}\n\n{NEW_PROMPT}"
    assert requested.config_hash == new_hash


OWNER_LINE = b'{"whatsapp": {"phone_number": "491700000000"}, '
BAD_EDITS = {
    "unknown-key": (OWNER_LINE + b'"oops": 1}', "oops"),
    "nested-10000": (OWNER_LINE + b'"x": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", "too deeply"),
    "1e400": (OWNER_LINE + b'"llm": {"temperature": 1e400}}', "out of range, got 1e400"),
    "2**64": (OWNER_LINE + b'"limits": {"max_input_chars": %d}}' % 2**64, "max_input_chars"),
}


@pytest.mark.parametrize("edit", BAD_EDITS.values(), ids=BAD_EDITS.keys())
def test_an_invalid_edit_is_reported_once_and_the_old_config_stays(
    daemon: Daemon, edit: tuple[bytes, str]
):
    good = daemon.config.read_bytes()
    content, marker = edit
    write_atomically(daemon.config, content)

    daemon.wait_stderr(marker)
    # Several polls of the unchanged bad file must not repeat the report.
    daemon.expect_no_sent(within=0.6)
    msg_id = daemon.message("Paris or Rome?")
    assert daemon.next_sent()["reply_to"] == msg_id

    assert len([ln for ln in daemon.stderr_lines() if marker in ln]) == 1
    assert [c.hash for c in daemon.find(ConfigLoaded)] == [hashlib.sha256(good).hexdigest()]
    requested = daemon.wait_event(LlmRequested, trigger_ids=[msg_id])
    assert requested.config_hash == hashlib.sha256(good).hexdigest()
    assert "Traceback" not in daemon.stderr


def test_a_changed_prompt_starts_a_new_session(daemon: Daemon):
    first = daemon.message("Paris or Rome?")
    assert daemon.next_sent()["reply_to"] == first
    edited = deep_merge(base_config(), entities(Alice={"prompt": NEW_PROMPT}))
    write_atomically(daemon.config, json.dumps(edited).encode())
    daemon.wait_event(ConfigLoaded, hash=hashlib.sha256(json.dumps(edited).encode()).hexdigest())

    second = daemon.message("And Vienna?")
    assert daemon.next_sent()["reply_to"] == second

    reasons = [s.reason for s in daemon.find(SessionStarted)]
    assert reasons == ["new", "config_changed"]
    requested = daemon.wait_event(LlmRequested, trigger_ids=[second])
    assert [m.role for m in requested.messages] == ["system", "user"]


def test_the_llm_clients_reloads_replaced_close_their_connections(
    daemon: Daemon, llm_server: FakeLlmServer
):
    """Each LLM setting edited makes a new client; the replaced ones would keep their
    pooled connections until the bot stopped."""
    first = daemon.message("Paris or Rome?")
    assert daemon.next_sent()["reply_to"] == first
    assert llm_server.wait_for_connections(1)
    for timeout in (61, 62, 63):
        data = json.dumps(deep_merge(base_config(), {"llm": {"timeout_seconds": timeout}}))
        write_atomically(daemon.config, data.encode())
        daemon.wait_event(ConfigLoaded, hash=hashlib.sha256(data.encode()).hexdigest())
        asked = daemon.message("And Vienna?")
        assert daemon.next_sent()["reply_to"] == asked
    assert llm_server.wait_for_connections(1)  # the newest client's, kept for its next call
    assert len(llm_server.requests) == 4
