"""The command line with the WhatsApp transport: what reaches the Go library, and stopping.

These run the real ``python -m pipeline`` with neonize loaded; WhatsApp's
servers are out of reach here, so a connect fails (or, through a proxy that
never answers, hangs) the way it does offline.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Daemon, daemon_env, run_cli, write_config
from tests.llm_server import TEST_KEY

STOP_LIMIT = 15.0  # SIGTERM ends the process within this, in every state


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A proxy that accepts connections and never says a word: a dial that hangs."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def neonize_daemon(tmp_path: Path, path: str | None = None, **whatsapp: object) -> Daemon:
    config = write_config(
        tmp_path / "app.json",
        {"whatsapp": {"session_db": str(tmp_path / "store" / "wa.db"), **whatsapp}},
    )
    env = daemon_env(PERPLEXITY_API_KEY=TEST_KEY, LLM_BASE_URL="http://127.0.0.1:9")
    if path is not None:
        env["PATH"] = path
    return Daemon(tmp_path, config, env, transport="neonize").start(expect_startup=False)


# -- command line --------------------------------------------------------------


def test_running_with_stdio_never_imports_neonize(tmp_path: Path) -> None:
    env = daemon_env(
        PERPLEXITY_API_KEY=TEST_KEY, LLM_BASE_URL="http://127.0.0.1:9", PYTHONPROFILEIMPORTTIME="1"
    )
    daemon = Daemon(tmp_path, write_config(tmp_path / "app.json"), env).start()
    try:
        code, stderr = daemon.stop(signal.SIGTERM)
    finally:
        daemon.close()

    imports = [line for line in stderr.splitlines() if line.startswith("import time:")]
    assert code == 0
    assert any("pipeline.transport._stdio" in line for line in imports)
    assert not [line for line in imports if "neonize" in line]


def test_neonize_run_checks_the_config_before_touching_neonize(tmp_path: Path) -> None:
    config = write_config(tmp_path / "app.json")
    result = run_cli(
        ["run", "--transport", "neonize", "--config", str(config)],
        cwd=tmp_path,
        env=daemon_env(PERPLEXITY_API_KEY=None, PYTHONPROFILEIMPORTTIME="1"),
    )

    lines = result.stderr.splitlines()
    errors = [line for line in lines if not line.startswith("import time:")]
    assert result.returncode == 2
    assert len(errors) == 1
    assert "PERPLEXITY_API_KEY" in errors[0]
    assert not [line for line in lines if "neonize" in line]
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--transport", "neonize", "--pair-phone", "call me"], "--pair-phone"),
        (["--transport", "stdio", "--force-qr"], "need --transport neonize"),
        (["--transport", "stdio", "--capture-inbound", "cap"], "needs --transport neonize"),
    ],
)
def test_pairing_options_are_checked(tmp_path: Path, args: list[str], message: str) -> None:
    config = write_config(tmp_path / "app.json")
    result = run_cli(
        ["run", "--config", str(config), "--store", str(tmp_path / "store"), *args],
        cwd=tmp_path,
        env=daemon_env(PERPLEXITY_API_KEY=TEST_KEY),
    )

    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert message in result.stderr


def test_a_transport_that_gives_up_stops_the_daemon_with_status_3(tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "from pipeline import cli\n"
        "from pipeline.transport import TransportError\n"
        "class LoggedOut:\n"
        "    name, owner_jid = 'test', '491700000000@s.whatsapp.net'\n"
        "    def new_message_id(self): return None\n"
        "    async def run(self, deliver, status):\n"
        "        raise TransportError('logged out of WhatsApp: pair again', retryable=False)\n"
        "    async def send(self, *args, **kwargs):\n"
        "        raise TransportError('not connected', retryable=True)\n"
        "    async def aclose(self): pass\n"
        "cli._transport = lambda *args: LoggedOut()\n"
        "sys.exit(cli.main(['run', '--store', 'store']))\n"
    )
    write_config(tmp_path / "app.json")
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=daemon_env(PERPLEXITY_API_KEY=TEST_KEY, LLM_BASE_URL="http://127.0.0.1:9"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 3, result.stderr  # needs the owner: no restart
    assert result.stderr.splitlines()[-1] == "wabot: logged out of WhatsApp: pair again"
    assert "Traceback" not in result.stderr
    assert '"event": "stopped"' in result.stderr  # a clean shutdown, store closed


def _environ(pid: int) -> dict[str, str]:
    """The environment the process image started with: what the Go runtime reads."""
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


@pytest.mark.parametrize(("bot_tag", "seen"), [(False, "off"), (True, "on")])
def test_bot_tag_is_in_the_environment_the_go_library_reads(
    tmp_path: Path, bot_tag: bool, seen: str
) -> None:
    daemon = neonize_daemon(tmp_path, bot_tag=bot_tag)
    try:
        daemon.wait_stderr('"state": "connecting"', timeout=30)
        environ = _environ(daemon.pid)
        code, _ = daemon.stop(timeout=STOP_LIMIT)
    finally:
        daemon.close()

    assert environ.get("NEONIZE_BOT_TAG") == seen
    assert code == 0


def test_sigterm_ends_the_process_in_time_while_a_connect_hangs(
    tmp_path: Path, black_hole: str
) -> None:
    daemon = neonize_daemon(tmp_path, proxy=black_hole)
    try:
        daemon.wait_stderr('"state": "connecting"', timeout=30)
        started = time.monotonic()
        code, stderr = daemon.stop(timeout=STOP_LIMIT)  # raises if it takes longer
        took = time.monotonic() - started
    finally:
        daemon.close()

    assert code == 0, stderr[-2000:]
    assert took < STOP_LIMIT


def test_a_missing_libmagic_is_one_line_naming_the_package(tmp_path: Path) -> None:
    fake = tmp_path / "fake"
    (fake / "magic").mkdir(parents=True)
    # What python-magic raises where the system library is absent (slim images).
    (fake / "magic" / "__init__.py").write_text(
        "raise ImportError('failed to find libmagic.  Check your installation')\n"
    )
    config = write_config(tmp_path / "app.json")
    result = run_cli(
        ["run", "--transport", "neonize", "--config", str(config), "--store", str(tmp_path / "s")],
        cwd=tmp_path,
        env=daemon_env(PERPLEXITY_API_KEY=TEST_KEY, PYTHONPATH=str(fake), NEONIZE_BOT_TAG="off"),
    )

    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert "libmagic1" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_ffmpeg_warning_at_connect(tmp_path: Path) -> None:
    bare = tmp_path / "bin"  # a PATH without ffmpeg, whatever this machine has
    bare.mkdir()
    uname = shutil.which("uname")
    assert uname is not None
    (bare / "uname").symlink_to(uname)  # neonize runs it at import
    daemon = neonize_daemon(tmp_path, path=str(bare))
    try:
        daemon.wait_stderr('"state": "disconnected"', timeout=30)
        daemon.stop(timeout=STOP_LIMIT)
    finally:
        daemon.close()

    # neonize's words when ffmpeg is missing.
    assert "not found on PATH" not in daemon.stderr
    assert "media operations" not in daemon.stderr
