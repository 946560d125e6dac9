"""Drive the real daemon as a subprocess: JSON lines in on stdin, ``sent`` lines
out on stdout, decisions read straight from ``STORE/events.db``.

Waiting is on evidence: a stdout line, a log event or a stderr line. The only
bounded wait without one is ``Daemon.expect_no_sent``, used after the log
already proves the decision was made.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, TypeVar, cast

from events.backends import open_log
from events.model import ConfigLoaded, Event, Recorded, ReplyPlanned, ReplySent
from events.protocol import LogWriter

ROOT = Path(__file__).resolve().parents[2]
OWNER = "491700000000"
OWNER_JID = f"{OWNER}@s.whatsapp.net"
ALICE = "491701111111@s.whatsapp.net"
BOB = "491702222222@s.whatsapp.net"
GROUP = "120363000000000000@g.us"
STRANGER = "491709999999@s.whatsapp.net"
SENT_KEYS = frozenset({"type", "id", "chat", "text", "reply_to", "purpose", "quoted"})
# The keys of every stdout line type (docs/stdio.md); part/parts only on split replies.
LINE_KEYS = {
    "sent": SENT_KEYS,
    "presence": frozenset({"type", "chat", "state"}),
    "read": frozenset({"type", "chat", "ids"}),
}
DEFAULT_PERSONA = "You are a concise, friendly assistant."
DEFAULT_PROMPT = "Answer in the language of the question."
ALICE_PERSONA = "You are Alice's well-travelled travel planner."
ALICE_PROMPT = "Suggest concrete options with prices."
# Variables of the developer's shell that would change what the daemon does.
_FOREIGN_ENV = (
    "PERPLEXITY_API_KEY",
    "LLM_API_KEY",
    "LLM_BASE_URL",
    "WABOT_STORE",
    "WABOT_LOG_URL",
    "TRANSCRIPTION_API_KEY",
    "TRANSCRIPTION_BASE_URL",
)

E = TypeVar("E", bound=Event)


def base_config() -> dict[str, Any]:
    """The app.json every e2e test starts from (fast polling, no debounce)."""
    return {
        "whatsapp": {"phone_number": OWNER},
        "defaults": {"persona": DEFAULT_PERSONA, "prompt": DEFAULT_PROMPT},
        "monitored_entities": [
            {
                "type": "user",
                "phone": "491701111111",
                "name": "Alice",
                "persona": ALICE_PERSONA,
                "prompt": ALICE_PROMPT,
            },
            {
                "type": "group",
                "jid": GROUP,
                "name": "Family",
                "trigger": {"mode": "mention", "keywords": ["bot"]},
            },
            {"type": "self", "name": "Me"},
        ],
        "polling": {"interval_seconds": 0.2, "debounce_seconds": 0, "catch_up_minutes": 30},
        # No daily message may land in the middle of a test.
        "vitality": {"enabled": False},
        "llm": {"provider": "perplexity", "model": "perplexity/sonar", "max_retries": 2},
        "takeover": {"enabled": True, "minutes": 30},
    }


def deep_merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` applied; nested dicts merge, anything else replaces."""
    merged = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def entities(**changes: Mapping[str, Any]) -> dict[str, Any]:
    """Overrides that change base entities by name, e.g. ``entities(Alice={"debug": True})``."""
    updated = [
        {**entity, **changes.get(entity["name"], {})}
        for entity in base_config()["monitored_entities"]
    ]
    return {"monitored_entities": updated}


def write_config(path: Path, overrides: Mapping[str, Any] | None = None) -> Path:
    """Write the base config with ``overrides`` merged in; atomic, as editors save."""
    data = deep_merge(base_config(), overrides or {})
    write_atomically(path, json.dumps(data, indent=2).encode())
    return path


def write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def daemon_env(**overrides: str | None) -> dict[str, str]:
    """The test process environment without the user's LLM settings, plus ``overrides``
    (a None value removes a variable)."""
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN_ENV}
    env["PYTHONUNBUFFERED"] = "1"
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_cli(
    args: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float = 20.0,
    umask: int = -1,
) -> subprocess.CompletedProcess[str]:
    """``python -m pipeline ARGS`` to completion, stdin closed."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        umask=umask,
    )


class Daemon:
    """One ``python -m pipeline run`` (stdio unless told) and its store, across restarts."""

    _ids = itertools.count(1)

    def __init__(
        self,
        workdir: Path,
        config: Path,
        env: Mapping[str, str],
        *,
        transport: str = "stdio",
        umask: int = -1,
    ) -> None:
        self.workdir = workdir
        self.config = config
        self.transport = transport
        self.store = workdir / "store"
        self.env = dict(env)
        self.umask = umask  # the daemon's umask; -1 inherits this process's
        self.all_sent: list[dict[str, Any]] = []  # every sent line, across restarts
        self.shown: list[dict[str, Any]] = []  # presence and read lines, across restarts
        self.stdout_lines: list[str] = []
        self.startup: dict[str, Any] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = False
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stash: deque[dict[str, Any]] = deque()
        self._stderr: list[str] = []
        self._stderr_changed = threading.Condition()
        self._readers: list[threading.Thread] = []
        self._log: LogWriter | None = None

    # -- process ---------------------------------------------------------

    def start(self, *, expect_startup: bool = True) -> Daemon:
        """Spawn the daemon; by default wait until it is up, keeping its startup message.

        A restart within ``STARTUP_QUIET`` of the last startup message plans
        none: then the start's ``ConfigLoaded`` in the log says it is up, and
        ``startup`` is None.
        """
        assert self._proc is None or self._proc.poll() is not None, "already running"
        before = self.log.last_seq() if (self.store / "events.db").exists() else None
        self._close_pipes()
        self._stopping = False
        self._lines = queue.Queue()
        self._stash.clear()
        with self._stderr_changed:
            self._stderr = []
        argv = [sys.executable, "-m", "pipeline", "run", "--transport", self.transport]
        argv += ["--config", str(self.config), "--store", str(self.store)]
        self._proc = subprocess.Popen(
            argv,
            cwd=self.workdir,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            umask=self.umask,
        )
        assert self._proc.stdout is not None
        assert self._proc.stderr is not None
        self._readers = [
            threading.Thread(target=self._read_stdout, args=(self._proc.stdout,), daemon=True),
            threading.Thread(target=self._read_stderr, args=(self._proc.stderr,), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        if expect_startup:
            self.startup = self._await_startup() if before is None else self._await_up(before)
        return self

    def restart(self) -> Daemon:
        """Start again on the same store and config (after ``stop`` or ``kill9``)."""
        return self.start()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> tuple[int, str]:
        """Signal the daemon and wait for it to exit; returns (exit status, stderr)."""
        proc = self._running()
        self._stopping = True
        proc.send_signal(sig)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            name = signal.Signals(sig).name
            raise AssertionError(f"daemon ignored {name} for {timeout}s") from None
        self._join_readers()
        return code, self.stderr

    def kill9(self) -> None:
        proc = self._running()
        self._stopping = True
        proc.kill()
        proc.wait()
        self._join_readers()

    @property
    def pid(self) -> int:
        return self._running().pid

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def close(self) -> None:
        """Teardown: kill whatever still runs, close pipes and the log."""
        if self.alive:
            self.kill9()
        self._close_pipes()
        if self._log is not None:
            self._log.close()
            self._log = None

    # -- stdin -----------------------------------------------------------

    def send(self, **fields: Any) -> None:
        """Write one JSON object as a stdin line, exactly as given."""
        self.send_raw(json.dumps(fields))

    def message(self, text: str, chat: str = ALICE, **fields: Any) -> str:
        """Send a message with a fresh id (unless given); returns the id."""
        msg_id = str(fields.pop("id", f"M{next(self._ids)}"))
        self.send(id=msg_id, chat=chat, text=text, **fields)
        return msg_id

    def send_raw(self, line: str) -> None:
        self.send_bytes(line.encode())

    def send_bytes(self, line: bytes) -> None:
        """Write ``line`` and a newline to stdin, bytes as they are (valid UTF-8 or not)."""
        stdin = self._running().stdin
        assert stdin is not None
        stdin.write(line + b"\n")
        stdin.flush()

    def close_stdin(self) -> None:
        stdin = self._running().stdin
        assert stdin is not None
        stdin.close()

    def replay(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """``python replay.py ARGS --store STORE`` on this daemon's store, as a user runs it."""
        return subprocess.run(
            [sys.executable, str(ROOT / "replay.py"), *args, "--store", str(self.store)],
            cwd=self.workdir,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    # -- stdout ----------------------------------------------------------

    def next_sent(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next object the daemon printed on stdout."""
        if self._stash:
            return self._stash.popleft()
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"nothing sent within {timeout}s\n{self._tail()}") from None
        if line is None:
            raise AssertionError(f"stdout closed (daemon exited)\n{self._tail()}")
        try:
            sent: dict[str, Any] = json.loads(line)
        except ValueError:
            raise AssertionError(f"stdout line is not JSON: {line!r}") from None
        return sent

    def expect_no_sent(self, within: float = 0.3) -> None:
        """Nothing appears on stdout for ``within`` seconds."""
        if self._stash:
            raise AssertionError(f"unexpected send: {self._stash[0]}")
        try:
            line = self._lines.get(timeout=within)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected send: {line}")

    def _await_startup(self, timeout: float = 15.0) -> dict[str, Any]:
        # Replies owed from an earlier run may come first: keep them for next_sent.
        early: list[dict[str, Any]] = []
        while True:
            sent = self.next_sent(timeout)
            if sent.get("purpose") == "startup":
                self._stash.extend(early)
                # Recorded as sent, so a kill -9 from here on does not owe it again.
                self.wait_record(ReplySent, timeout, wa_id=sent["id"])
                return sent
            early.append(sent)

    def _await_up(self, before: int) -> dict[str, Any] | None:
        """Up once this start's ``ConfigLoaded`` is in the log; its startup message, if any."""
        loaded = self.wait_for(lambda r: r.seq > before and isinstance(r.event, ConfigLoaded), 15)
        planned = [
            r.event
            for r in self.log.read(after=loaded.seq)
            if isinstance(r.event, ReplyPlanned) and r.event.purpose == "startup"
        ]
        return self._await_startup() if planned else None

    # -- the log ---------------------------------------------------------

    @property
    def log(self) -> LogWriter:
        """The daemon's log: ``STORE/events.db``, or its number's in ``WABOT_LOG_URL``."""
        if self._log is None:
            number = json.loads(self.config.read_text())["whatsapp"]["phone_number"]
            self._log = open_log(self.store, url=self.env.get("WABOT_LOG_URL"), name=number)
        return self._log

    def events(self) -> list[Recorded]:
        return list(self.log.read())

    def find(self, event_type: type[E], /, **fields: Any) -> list[E]:
        """Events of ``event_type`` whose named fields have the given values, in log order."""
        return [cast(E, r.event) for r in self.events() if _matches(r.event, event_type, fields)]

    def wait_for(self, predicate: Callable[[Recorded], bool], timeout: float = 10.0) -> Recorded:
        """The first recorded event (old or new) for which ``predicate`` holds."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for rec in self.log.read(after=seen):
                seen = rec.seq
                if predicate(rec):
                    return rec
            if time.monotonic() > deadline:
                raise AssertionError(f"no matching event within {timeout}s\n{self._tail()}")
            if self._proc is not None and self._proc.poll() is not None and not self._stopping:
                raise AssertionError(f"daemon exited ({self._proc.returncode})\n{self._tail()}")
            self.log.wait(seen, timeout=0.1)

    def wait_record(
        self, event_type: type[Event], /, timeout: float = 10.0, **fields: Any
    ) -> Recorded:
        return self.wait_for(lambda r: _matches(r.event, event_type, fields), timeout)

    def wait_event(self, event_type: type[E], /, timeout: float = 10.0, **fields: Any) -> E:
        """The first event of ``event_type`` with the given field values."""
        return cast(E, self.wait_record(event_type, timeout, **fields).event)

    # -- stderr ----------------------------------------------------------

    @property
    def stderr(self) -> str:
        with self._stderr_changed:
            return "".join(self._stderr)

    def stderr_lines(self) -> list[str]:
        return self.stderr.splitlines()

    def wait_stderr(self, text: str, timeout: float = 10.0) -> str:
        """The first stderr line containing ``text``."""

        def found() -> str | None:
            return next((line for line in self._stderr if text in line), None)

        with self._stderr_changed:
            if not self._stderr_changed.wait_for(lambda: found() is not None, timeout):
                raise AssertionError(f"no stderr line with {text!r} in {timeout}s\n{self._tail()}")
            return cast(str, found())

    # -- internals -------------------------------------------------------

    def _running(self) -> subprocess.Popen[bytes]:
        assert self._proc is not None, "daemon never started"
        assert self._proc.poll() is None, "daemon is not running"
        return self._proc

    def _read_stdout(self, pipe: IO[bytes]) -> None:
        """``sent`` lines go to ``next_sent``; presence and read lines to ``shown``."""
        for raw in iter(pipe.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            self.stdout_lines.append(line)
            try:
                obj = json.loads(line)
            except ValueError:  # next_sent and the contract test report it
                self._lines.put(line)
                continue
            if isinstance(obj, dict) and obj.get("type") in ("presence", "read"):
                self.shown.append(obj)
                continue
            self.all_sent.append(obj)
            self._lines.put(line)
        self._lines.put(None)

    def _read_stderr(self, pipe: IO[bytes]) -> None:
        for raw in iter(pipe.readline, b""):
            with self._stderr_changed:
                self._stderr.append(raw.decode(errors="replace"))
                self._stderr_changed.notify_all()

    def _join_readers(self) -> None:
        for reader in self._readers:
            reader.join(timeout=5)

    def _close_pipes(self) -> None:
        if self._proc is None:
            return
        self._join_readers()
        for pipe in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
            if pipe is not None and not pipe.closed:
                with contextlib.suppress(BrokenPipeError):  # unflushed stdin of a dead daemon
                    pipe.close()

    def _tail(self, lines: int = 15) -> str:
        return "stderr tail:\n" + "\n".join(self.stderr_lines()[-lines:])


def _matches(event: object, kind: type[Event], fields: Mapping[str, Any]) -> bool:
    return isinstance(event, kind) and all(getattr(event, k) == v for k, v in fields.items())


def replies_to(sent: list[dict[str, Any]], msg_id: str) -> list[dict[str, Any]]:
    """The ``reply`` sends answering ``msg_id``."""
    return [s for s in sent if s.get("purpose") == "reply" and s.get("reply_to") == msg_id]


def iter_store_files(store: Path) -> Iterator[Path]:
    """Every regular file under the store (log files, events.db and its WAL)."""
    return (p for p in sorted(store.rglob("*")) if p.is_file())


def loose_modes(root: Path) -> list[str]:
    """Paths under ``root`` (itself included) that others may use: dirs not 0700, files not 0600."""
    found = []
    for path in [root, *sorted(root.rglob("*"))]:
        mode = path.lstat().st_mode & 0o777
        if path.is_symlink():
            continue
        wanted = 0o700 if path.is_dir() else 0o600
        if mode != wanted:
            found.append(f"{path.relative_to(root.parent)} {mode:04o}")
    return found
