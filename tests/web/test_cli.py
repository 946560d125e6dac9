"""``python -m pipeline web`` and ``run`` with ``web.enabled``, over real sockets."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from events.model import ReplySent
from tests.e2e.harness import ALICE, Daemon, daemon_env, run_cli, write_config
from tests.llm_server import TEST_KEY, FakeLlmServer
from tests.web.conftest import WebStore, start_web, text_of

pytestmark = pytest.mark.slow
TOKEN = "0123456789abcdef-token"


def _one_line(done_stderr: str) -> str:
    assert done_stderr.count("\n") == 1, done_stderr
    return done_stderr.rstrip("\n")


def _files(store: Path) -> dict[str, tuple[int, int]]:
    """Every file's size and time, but SQLite's shared-memory index (readers mark it too)."""
    found = (p for p in store.rglob("*") if not p.name.endswith("-shm"))
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in found}


def test_the_console_serves_the_log_and_stops_on_sigterm(web_store: WebStore):
    before = _files(web_store.store)
    served = start_web(web_store.store)
    try:  # closed however it fails: a leaked stderr pipe would fail a later test
        with httpx.Client(base_url=served.url, timeout=10) as client:
            chats = client.get("/")
            assert chats.status_code == 200
            assert "Alice" in text_of(chats.text)
            health = client.get("/healthz")
            assert health.status_code == 503
            assert health.text.startswith("unhealthy: daemon: no daemon is running on")
            assert client.get("/metrics").status_code == 200
        assert served.stop() == 0
    finally:
        served.close()
    assert "Traceback" not in "".join(served.stderr)
    assert _files(web_store.store) == before  # it wrote nothing


@pytest.mark.parametrize(
    ("listen", "message"),
    [
        (
            "0.0.0.0:8765",
            "wabot: --listen: 0.0.0.0:8765 is not a loopback address: set WABOT_WEB_TOKEN "
            "(environment or .env) so the console asks for it",
        ),
        ("8765", "wabot: --listen: '8765' is not host:port (e.g. 127.0.0.1:8765)"),
    ],
)
def test_a_listen_address_it_will_not_use_is_one_line_and_exit_2(
    web_store: WebStore, listen: str, message: str
):
    done = run_cli(
        ["web", "--listen", listen, "--store", str(web_store.store)],
        cwd=web_store.store.parent,
        env=daemon_env(),
    )
    assert done.returncode == 2
    assert _one_line(done.stderr) == message


def test_a_store_without_a_log_is_one_line_and_exit_2(tmp_path: Path):
    done = run_cli(["web", "--store", str(tmp_path / "none")], cwd=tmp_path, env=daemon_env())
    assert done.returncode == 2
    assert "no event log here" in _one_line(done.stderr)


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_taken_port_is_one_line_and_exit_2(web_store: WebStore, taken_port: int):
    listen = f"127.0.0.1:{taken_port}"
    done = run_cli(
        ["web", "--listen", listen, "--store", str(web_store.store)],
        cwd=web_store.store.parent,
        env=daemon_env(),
    )
    assert done.returncode == 2
    assert _one_line(done.stderr) == f"wabot: cannot listen on {listen}: Address already in use"


def test_a_token_from_the_environment_guards_the_standalone_console(web_store: WebStore):
    web = start_web(web_store.store, env=daemon_env(WABOT_WEB_TOKEN=TOKEN))
    try:
        with httpx.Client(base_url=web.url, timeout=10) as client:
            assert client.get("/metrics").status_code == 401
            bearer = {"authorization": f"Bearer {TOKEN}"}
            assert client.get("/metrics", headers=bearer).status_code == 200
        assert TOKEN not in "".join(web.stderr)
    finally:
        web.close()


@pytest.fixture
def llm_server() -> Iterator[FakeLlmServer]:
    with FakeLlmServer() as server:
        yield server


def _daemon(tmp_path: Path, server: FakeLlmServer, web: dict[str, object], **env: str) -> Daemon:
    tmp_path.mkdir(exist_ok=True)
    config = write_config(tmp_path / "app.json", {"web": web})
    base = daemon_env(PERPLEXITY_API_KEY=TEST_KEY, LLM_BASE_URL=server.base_url, **env)
    return Daemon(tmp_path, config, base)


def test_run_serves_the_console_beside_the_daemon(tmp_path: Path, llm_server: FakeLlmServer):
    daemon = _daemon(tmp_path, llm_server, {"enabled": True, "listen": "127.0.0.1:0"}).start()
    try:
        line = daemon.wait_stderr("web_listening")
        match = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert match is not None, line
        with httpx.Client(base_url=match.group(0), timeout=10) as client:
            health = client.get("/healthz")
            assert health.status_code == 200, health.text
            assert "daemon: ok: agent loop running (this process)" in health.text
            msg_id = daemon.message("What is the capital of Peru?", chat=ALICE)
            assert daemon.next_sent()["reply_to"] == msg_id
            daemon.wait_event(ReplySent)
            timeline = text_of(client.get(f"/chats/{ALICE}").text)
            assert "What is the capital of Peru?" in timeline
            assert "Echo: What is the capital of Peru?" in timeline
            metrics = client.get("/metrics").text
            assert 'wabot_messages_total{decision="llm"} 1.0' in metrics
            assert "wabot_up 1.0" in metrics
        code, stderr = daemon.stop()
        assert code == 0
        assert "Traceback" not in stderr
        assert "service_failed" not in stderr
    finally:
        daemon.close()


def test_run_refuses_a_public_console_without_a_token(tmp_path: Path, llm_server: FakeLlmServer):
    daemon = _daemon(tmp_path, llm_server, {"enabled": True, "listen": "0.0.0.0:8765"})
    argv = ["run", "--transport", "stdio", "--config", str(daemon.config)]
    done = run_cli([*argv, "--store", str(daemon.store)], cwd=tmp_path, env=daemon.env)
    assert done.returncode == 2
    assert _one_line(done.stderr) == (
        f"wabot: {daemon.config}: web.listen: 0.0.0.0:8765 is not a loopback address: "
        "set WABOT_WEB_TOKEN (environment or .env) so the console asks for it"
    )


def test_run_stops_at_once_when_the_console_port_is_taken(
    tmp_path: Path, llm_server: FakeLlmServer, taken_port: int
):
    listen = f"127.0.0.1:{taken_port}"
    daemon = _daemon(tmp_path, llm_server, {"enabled": True, "listen": listen})
    argv = ["run", "--transport", "stdio", "--config", str(daemon.config)]
    done = run_cli([*argv, "--store", str(daemon.store)], cwd=tmp_path, env=daemon.env)
    assert done.returncode == 2
    assert (
        done.stderr.splitlines()[-1] == f"wabot: cannot listen on {listen}: Address already in use"
    )
