"""The real daemon (``python -m pipeline run --transport stdio``) against the fake LLM.

``TimedServer`` stamps when each request reaches the server; ``Daemon`` runs
the subprocess, stamps each stdout line as it arrives, and stops it cleanly.
Stamps are ``time.perf_counter()`` of this process, so they compare directly.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from tests.llm_server import TEST_KEY, FakeLlmServer, Received, Reply

REPO = Path(__file__).resolve().parent.parent
OWNER_PHONE = "491700000000"
START_TIMEOUT = 60.0


class TimedServer(FakeLlmServer):
    """The fake LLM, noting the arrival time of every request."""

    def __init__(self, *, backlog: int = 0) -> None:
        super().__init__()
        if backlog:
            # Many daemons connect at once: a longer accept queue than http.server's 5,
            # or connections beyond it wait a SYN retransmission (1 s) to get in.
            self._httpd.socket.listen(backlog)
        self._stamps_lock = threading.Lock()
        self._arrivals: list[float] = []

    def answer(self, request: Received) -> tuple[Reply, dict[str, Any] | bytes]:
        # Called once the request body is read, before any scripted delay.
        with self._stamps_lock:
            self._arrivals.append(time.perf_counter())
        return super().answer(request)

    def arrivals(self) -> list[float]:
        with self._stamps_lock:
            return list(self._arrivals)


def user_jid(n: int) -> str:
    return f"4917020{n:05d}@s.whatsapp.net"


def app_config(users: int, *, max_concurrent_chats: int = 8) -> dict[str, Any]:
    """An app.json monitoring ``users`` direct chats, answering at once and without limits."""
    return {
        # The pace that keeps a real account safe would time WhatsApp's limit, not the bot.
        "whatsapp": {"phone_number": OWNER_PHONE, "max_sends_per_minute": 1_000_000},
        "monitored_entities": [
            {"type": "user", "jid": user_jid(n), "name": f"User {n}"} for n in range(users)
        ],
        "polling": {"debounce_seconds": 0, "max_concurrent_chats": max_concurrent_chats},
        "vitality": {"enabled": False},
        "limits": {"replies_per_chat_per_hour": 3600, "daily_budget_usd": 100_000},
        "logging": {"level": "WARNING", "format": "json"},
    }


def message_line(n: int, chat: str, text: str) -> bytes:
    """One stdin line of the stdio transport (docs/stdio.md)."""
    line = {"type": "message", "id": f"B{n:06d}", "chat": chat, "text": text}
    return json.dumps(line).encode() + b"\n"


class Sent:
    """A ``sent`` line from the daemon's stdout and when it arrived (other lines are dropped)."""

    __slots__ = ("at", "line")

    def __init__(self, at: float, line: dict[str, Any]) -> None:
        self.at = at
        self.line = line


class Daemon:
    """``python -m pipeline run --transport stdio`` in ``folder``, started and ready."""

    def __init__(
        self,
        folder: Path,
        config: dict[str, Any],
        server: FakeLlmServer,
        env: Mapping[str, str] | None = None,
        program: Sequence[str] = (sys.executable, "-m", "pipeline"),
    ) -> None:
        """``program``: what runs ``pipeline``'s command line (a benchmark may wrap it)."""
        (folder / "app.json").write_text(json.dumps(config))
        (folder / "empty.env").write_text("")
        self._stderr_path = folder / "daemon.stderr"
        env = dict(
            os.environ, PERPLEXITY_API_KEY=TEST_KEY, LLM_BASE_URL=server.base_url, **(env or {})
        )
        command = [
            *program,
            *("run", "--transport", "stdio"),
            *("--config", str(folder / "app.json"), "--env", str(folder / "empty.env")),
            *("--store", str(folder / "store")),
        ]
        with self._stderr_path.open("wb") as stderr:
            self._proc = subprocess.Popen(
                command,
                cwd=REPO,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
            )
        self._sent: queue.Queue[Sent | None] = queue.Queue()
        threading.Thread(target=self._read, name="daemon-stdout", daemon=True).start()

    def __enter__(self) -> Self:
        try:
            self._await_startup()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def write(self, data: bytes) -> float:
        """Write stdin lines; returns the time just before the write."""
        assert self._proc.stdin is not None
        started = time.perf_counter()
        self._proc.stdin.write(data)
        self._proc.stdin.flush()
        return started

    def next_sent(self, timeout: float) -> Sent:
        try:
            sent = self._sent.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"no reply within {timeout:.0f} s; {self._stderr_tail()}") from None
        if sent is None:
            raise RuntimeError(f"the daemon exited; {self._stderr_tail()}")
        return sent

    @property
    def pid(self) -> int:
        return self._proc.pid

    def stop(self) -> int:
        """SIGTERM, as systemd stops it; the exit status (killed after 20 s)."""
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                return self._proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        return self._proc.wait()

    def _await_startup(self) -> None:
        """The startup message on stdout means the daemon has folded its log and listens."""
        startup = self.next_sent(START_TIMEOUT)
        if startup.line.get("purpose") != "startup":
            raise RuntimeError(f"expected the startup message first, got {startup.line}")

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for raw in self._proc.stdout:
            line = json.loads(raw)
            # Presence and read lines show what WhatsApp would show; only sends count here.
            if line.get("type") == "sent":
                self._sent.put(Sent(time.perf_counter(), line))
        self._sent.put(None)

    def _stderr_tail(self) -> str:
        lines = self._stderr_path.read_text(errors="replace").strip().splitlines()
        return f"daemon stderr: {lines[-1]}" if lines else "daemon stderr is empty"
