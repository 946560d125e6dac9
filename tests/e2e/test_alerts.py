"""Owner alerts out of band: a real webhook receiver on 127.0.0.1, the owner's own chat."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from events.model import LlmFailed, LlmRequested, OwnerAlerted, ReplySent
from tests.e2e.conftest import MakeDaemon
from tests.e2e.harness import OWNER_JID, iter_store_files
from tests.llm_server import FakeLlmServer, Reply

TOKEN = "tk-5e1c7d9a"  # a webhook's secret path part, as ntfy and Slack hooks have


class Hook:
    """A webhook endpoint that records each POSTed JSON body."""

    def __init__(self, status: int = 200) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.status = status
        self.arrived = threading.Condition()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                with hook.arrived:
                    hook.bodies.append(json.loads(raw))
                    hook.arrived.notify_all()
                self.send_response(hook.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/{TOKEN}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


def test_a_logout_posts_one_alert_per_episode(make_daemon: MakeDaemon, hook: Hook) -> None:
    daemon = make_daemon({"alerts": {"webhook": hook.url}})
    daemon.send(type="status", state="logged_out", detail="LOGGED_OUT")
    daemon.wait_event(OwnerAlerted, kind="logged_out")
    daemon.send(type="status", state="logged_out", detail="LOGGED_OUT")  # same episode
    daemon.send(type="status", state="connected")
    daemon.send(type="status", state="logged_out", detail="again")
    daemon.wait_event(OwnerAlerted, kind="logged_out", detail="again")
    daemon.stop()

    assert [(b["kind"], b["detail"]) for b in hook.bodies] == [
        ("logged_out", "LOGGED_OUT"),
        ("logged_out", "again"),
    ]
    assert hook.bodies[0]["source"] == "wabot"
    assert "logged the bot out" in hook.bodies[0]["text"]
    assert all(a.ok for a in daemon.find(OwnerAlerted))
    # WhatsApp is what failed: the owner's chat gets nothing.
    assert [s for s in daemon.all_sent if s["purpose"] == "alert"] == []


def test_a_rejected_key_alerts_the_owner_once_in_their_chat(
    make_daemon: MakeDaemon, hook: Hook
) -> None:
    daemon = make_daemon({"alerts": {"webhook": hook.url}}, env={"PERPLEXITY_API_KEY": "wrong"})
    daemon.message("hello?")
    alert = daemon.next_sent()
    daemon.wait_event(ReplySent, wa_id=alert["id"])
    daemon.message("anyone?")
    daemon.wait_event(OwnerAlerted, kind="llm_failing")
    daemon.stop()

    assert alert["chat"] == OWNER_JID
    assert alert["purpose"] == "alert"
    assert "LLM keeps failing" in alert["text"]
    assert "API key rejected" in alert["text"]
    assert [b["kind"] for b in hook.bodies] == ["llm_failing"]
    assert len(daemon.find(OwnerAlerted)) == 1


def test_an_unreachable_webhook_is_recorded_and_the_bot_carries_on(
    make_daemon: MakeDaemon,
) -> None:
    daemon = make_daemon({"alerts": {"webhook": f"http://127.0.0.1:9/hooks/{TOKEN}"}})
    daemon.send(type="status", state="banned", detail="expires in 3600 s")
    alerted = daemon.wait_event(OwnerAlerted, kind="banned")
    daemon.send(type="status", state="connected")  # the ban is over: replies can go again
    msg = daemon.message("still answering?")
    assert daemon.next_sent()["reply_to"] == msg
    daemon.stop()

    assert not alerted.ok
    assert alerted.error
    # The webhook's secret path reaches no event, log line or stdout.
    for path in iter_store_files(daemon.store):
        assert TOKEN.encode() not in path.read_bytes(), path
    assert TOKEN not in daemon.stderr
    assert all(TOKEN not in line for line in daemon.stdout_lines)


@pytest.mark.parametrize("status", [400, 402, 404])
def test_a_refusal_no_retry_mends_alerts_the_owner_at_the_first_failure(
    make_daemon: MakeDaemon, llm_server: FakeLlmServer, status: int
) -> None:
    """Not only a rejected key: any final 4xx (a refused setting, no credit, no such
    model) fails every turn until the owner acts, so the first one is worth telling."""
    llm_server.script(Reply(status=status), Reply(status=status))
    daemon = make_daemon()
    daemon.message("hello?")
    alert = daemon.next_sent()
    daemon.wait_event(ReplySent, wa_id=alert["id"])
    again = daemon.message("anyone?")
    call = daemon.wait_event(LlmRequested, trigger_ids=[again])
    daemon.wait_event(LlmFailed, call_id=call.call_id, final=True)
    daemon.stop()

    assert alert["purpose"] == "alert"
    assert alert["chat"] == OWNER_JID
    assert f"HTTP {status}" in alert["text"]
    assert [f.status for f in daemon.find(LlmFailed) if f.final] == [status, status]
    assert len(daemon.find(OwnerAlerted, kind="llm_failing")) == 1  # once per episode
