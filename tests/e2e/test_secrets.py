"""The API key never reaches stdout, stderr, log files or the event log (docs/cli.md)."""

from __future__ import annotations

from events.model import LlmFailed
from tests.e2e.harness import iter_store_files
from tests.llm_server import FakeLlmServer, Reply

SECRET = "pplx-test-SECRET-123456"


def test_the_api_key_appears_nowhere(make_daemon):
    with FakeLlmServer(api_key=SECRET) as server:
        d = make_daemon(
            {"logging": {"level": "DEBUG"}},
            server=server,
            env={"PERPLEXITY_API_KEY": SECRET},
        )
        answered = d.message("hello")
        assert d.next_sent()["reply_to"] == answered
        # A provider error that echoes the key back must be redacted too.
        echo = {"error": {"message": f"invalid key {SECRET}", "type": "invalid_request_error"}}
        server.script(Reply(status=400, body=echo))
        d.message("again")
        failure = d.wait_event(LlmFailed, final=True)
        d.stop()

    assert server.requests[0].headers["authorization"] == f"Bearer {SECRET}"
    assert "invalid key" in failure.error
    assert SECRET not in "\n".join(d.stdout_lines)
    assert SECRET not in d.stderr
    files = list(iter_store_files(d.store))
    assert any(p.parent.name == "logs" for p in files)
    assert any(p.name == "events.db" for p in files)
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path
