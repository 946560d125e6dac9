"""A conversation recorded once by the real daemon, for replay, audit and stats tests.

Alice asks twice, a blank message is skipped, app.json changes her prompt
mid-conversation, she asks again, a group message without a trigger is
skipped, she resets and asks once more. The daemon is then stopped, so the
store is a quiet copy of a real log.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from events.model import ConfigLoaded, LlmRequested, MessageSkipped
from tests.e2e.harness import (
    ALICE,
    BOB,
    GROUP,
    Daemon,
    base_config,
    daemon_env,
    deep_merge,
    entities,
    write_atomically,
    write_config,
)
from tests.llm_server import TEST_KEY, FakeLlmServer

ROOT = Path(__file__).resolve().parent.parent
NEW_PROMPT = "Always answer in rhyme."
QUESTIONS = ("Hotels in Rome?", "And in Florence?", "Paris or Rome?", "Which is cheaper?")


@dataclass(frozen=True)
class Recording:
    workdir: Path  # holds app.json (as edited) and store/
    requests: int  # LLM calls the daemon made
    skipped_ids: tuple[str, ...]

    @property
    def store(self) -> Path:
        return self.workdir / "store"

    @property
    def config(self) -> Path:
        return self.workdir / "app.json"

    def copy(self, target: Path) -> Recording:
        """An independent copy (store and app.json) for a test that changes things."""
        shutil.copytree(self.workdir, target)
        return Recording(target, self.requests, self.skipped_ids)


def record(workdir: Path, server: FakeLlmServer) -> Recording:
    workdir.mkdir(parents=True)
    config = write_config(workdir / "app.json")
    env = daemon_env(PERPLEXITY_API_KEY=TEST_KEY, LLM_BASE_URL=server.base_url)
    daemon = Daemon(workdir, config, env).start()
    try:
        _ask(daemon, QUESTIONS[0])
        _ask(daemon, QUESTIONS[1])
        blank = daemon.message("   ")
        daemon.wait_event(MessageSkipped, msg_id=blank)
        edited = deep_merge(base_config(), entities(Alice={"prompt": NEW_PROMPT}))
        write_atomically(config, json.dumps(edited).encode())
        daemon.wait_event(ConfigLoaded, hash=hashlib.sha256(config.read_bytes()).hexdigest())
        _ask(daemon, QUESTIONS[2])
        group = daemon.message("dinner at eight?", chat=GROUP, sender=BOB, push_name="Bob")
        daemon.wait_event(MessageSkipped, msg_id=group)
        daemon.message("/reset")
        daemon.next_sent()
        _ask(daemon, QUESTIONS[3])
        code, _ = daemon.stop()
        assert code == 0
    finally:
        daemon.close()
    return Recording(workdir, len(server.requests), (blank, group))


def _ask(daemon: Daemon, text: str) -> None:
    msg_id = daemon.message(text, chat=ALICE)
    assert daemon.next_sent()["reply_to"] == msg_id
    daemon.wait_event(LlmRequested, trigger_ids=[msg_id])


def run_replay(
    args: list[str], rec: Recording, server: FakeLlmServer, *, columns: int = 80, umask: int = -1
) -> subprocess.CompletedProcess[str]:
    """``python replay.py ARGS --store STORE`` in the recording's directory, to completion."""
    env = daemon_env(
        PERPLEXITY_API_KEY=TEST_KEY, LLM_BASE_URL=server.base_url, COLUMNS=str(columns)
    )
    return subprocess.run(
        [sys.executable, str(ROOT / "replay.py"), *args, "--store", str(rec.store)],
        cwd=rec.workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        umask=umask,
    )


def log_position(store: Path) -> tuple[int, int]:
    """(row count, max seq) of the log, read without the log class."""
    with contextlib.closing(sqlite3.connect(store / "events.db")) as conn:
        count, top = conn.execute("SELECT count(*), max(seq) FROM events").fetchone()
    return int(count), int(top)
