"""A store the real daemon recorded over stdio, shared by the console's tests.

The conversation of ``tests.conversation`` (answers, a blank message and a
group message skipped, a config change, a reset), then a second run: Alice
sends HTML with a script (and deletes it), a call fails for good (HTTP 400)
on a message she then edits, and the owner writes in her chat (takeover).
Last, ``replay.py`` saves an experiment whose new reply differs from the
recorded one.
"""

from __future__ import annotations

import html
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

from events.model import LlmFailed, MessageEdited, MessageRevoked, MessageSkipped
from tests.conversation import Recording, record, run_replay
from tests.e2e.harness import ALICE, BOB, GROUP, Daemon, daemon_env, write_config
from tests.llm_server import TEST_KEY, FakeLlmServer, Reply, agent_answer
from tests.media_files import png, voice_note, write
from tests.transcription_server import FakeTranscriptionServer

SCRIPT_TEXT = '<script>window.__xss = 1; alert("xss")</script> & <b>bold</b>? Rome'
FAILING_TEXT = "Will this one fail?"
EDITED_TEXT = "Will this one fail, really?"
OWNER_TEXT = "I'll take it from here, Alice."
REPLAYED_REPLY = "Echo: Hotels in Rome? Try Trastevere."


@dataclass(frozen=True)
class WebStore:
    recording: Recording
    script_id: str
    failing_id: str

    @property
    def store(self) -> Path:
        return self.recording.store


@pytest.fixture(scope="session")
def web_store(tmp_path_factory: pytest.TempPathFactory) -> WebStore:
    with FakeLlmServer() as server:
        rec = record(tmp_path_factory.mktemp("web") / "recorded", server)
        env = daemon_env(PERPLEXITY_API_KEY=TEST_KEY, LLM_BASE_URL=server.base_url)
        daemon = Daemon(rec.workdir, rec.config, env).start()
        try:
            script_id = daemon.message(SCRIPT_TEXT, chat=ALICE, push_name="Alice")
            assert daemon.next_sent()["reply_to"] == script_id
            server.script(Reply(status=400))
            failing_id = daemon.message(FAILING_TEXT, chat=ALICE, push_name="Alice")
            daemon.wait_event(LlmFailed, final=True)
            daemon.send(type="edit", chat=ALICE, id=failing_id, text=EDITED_TEXT)
            daemon.wait_event(MessageEdited, msg_id=failing_id)
            daemon.send(type="revoke", chat=ALICE, id=script_id)
            daemon.wait_event(MessageRevoked, msg_id=script_id)
            owner_id = daemon.message(OWNER_TEXT, chat=ALICE, from_me=True)
            daemon.wait_event(MessageSkipped, msg_id=owner_id)
            code, _ = daemon.stop()
            assert code == 0
        finally:
            daemon.close()
        changed = agent_answer(
            {
                "input": [{"role": "user", "content": REPLAYED_REPLY[6:]}],
                "tools": [{"type": "web_search"}],
            }
        )
        server.script(Reply(body=changed))
        done = run_replay(["--chat", "Alice", "--prompt", "Be brief.", "--limit", "1"], rec, server)
        assert done.returncode == 0, done.stderr
    return WebStore(rec, script_id, failing_id)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ("mark", "span", "a", "strong", "ins", "del", "b", "i", "bdi"):
            self.parts.append(" ")  # a new block or cell: words do not run together

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def text_of(page: str) -> str:
    """What a reader sees of an HTML page: its text, entities decoded, spaces collapsed."""
    parser = _Text()
    parser.feed(page)
    return re.sub(r"\s+", " ", html.unescape("".join(parser.parts))).strip()


class Served:
    """``python -m pipeline web`` running on a free port; ``url`` ends with ``/``."""

    def __init__(self, store: Path, args: tuple[str, ...], env: dict[str, str] | None) -> None:
        argv = [sys.executable, "-m", "pipeline", "web", "--store", str(store)]
        self.proc = subprocess.Popen(
            [*argv, "--listen", "127.0.0.1:0", *args],
            cwd=store.parent,
            env=env or daemon_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.url = self._await_url()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def _await_url(self, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            if "web_listening" in line:
                match = re.search(r"http://127\.0\.0\.1:\d+/", line)
                assert match, line
                return match.group(0)
        self.close()
        raise AssertionError("the console did not start:\n" + "".join(self.stderr))

    def stop(self) -> int:
        """SIGTERM, as systemd or Ctrl-C would stop it; the exit status."""
        self.proc.terminate()
        code = self.proc.wait(15)
        self._reader.join(5)
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(5)
        assert self.proc.stderr is not None
        self.proc.stderr.close()


def start_web(store: Path, *args: str, env: dict[str, str] | None = None) -> Served:
    """Start the console on 127.0.0.1 (a free port) once it says where it listens."""
    return Served(store, args, env)


@pytest.fixture
def served(web_store: WebStore) -> Iterator[Served]:
    web = start_web(web_store.store)
    yield web
    web.close()


# -- a store with attachments, an edit and a group of two senders (issue 22 item 10) ------

VOICE_TEXT = "Wann treffen wir uns morgen?"
IMAGE_CAPTION = "Is this one of them?"
BEFORE_EDIT = "Dinner at Luigi's?"
AFTER_EDIT = "Dinner at Mario's?"
BOB_ASKS = "bot, pizza or pasta?"
CAROL_ASKS = "bot, and for dessert?"
CAROL = "491703333333@s.whatsapp.net"


@dataclass(frozen=True)
class MediaRecording:
    workdir: Path
    voice_id: str
    image_id: str
    edited_id: str

    @property
    def store(self) -> Path:
        return self.workdir / "store"


@pytest.fixture(scope="session")
def media_store(tmp_path_factory: pytest.TempPathFactory) -> MediaRecording:
    """Recorded by the real daemon over stdio, against the fake LLM and transcription
    servers: Alice's voice note (transcribed) and photo with a caption, a message of hers
    edited after its answer, and two people in the group each calling the bot by keyword."""
    workdir = tmp_path_factory.mktemp("media")
    config = write_config(workdir / "app.json")
    with FakeLlmServer() as server, FakeTranscriptionServer() as heard:
        heard.respond(lambda form: VOICE_TEXT)
        env = daemon_env(
            PERPLEXITY_API_KEY=TEST_KEY,
            LLM_BASE_URL=server.base_url,
            TRANSCRIPTION_BASE_URL=f"{heard.base_url}/v1",
            TRANSCRIPTION_API_KEY=TEST_KEY,
        )
        daemon = Daemon(workdir, config, env).start()
        try:
            note = write(workdir, "note.ogg", voice_note(20_000))
            photo = write(workdir, "photo.png", png())
            voice = {"kind": "voice", "path": str(note), "seconds": 7}
            daemon.send(id="V1", chat=ALICE, media=voice, push_name="Alice")
            assert daemon.next_sent()["reply_to"] == "V1"
            image = {"kind": "image", "path": str(photo)}
            daemon.send(id="I1", chat=ALICE, text=IMAGE_CAPTION, media=image, push_name="Alice")
            assert daemon.next_sent()["reply_to"] == "I1"
            edited = daemon.message(BEFORE_EDIT, chat=ALICE, push_name="Alice")
            assert daemon.next_sent()["reply_to"] == edited
            daemon.send(type="edit", chat=ALICE, id=edited, text=AFTER_EDIT)
            daemon.wait_event(MessageEdited, msg_id=edited)
            for sender, name, text in ((BOB, "Bob", BOB_ASKS), (CAROL, "Carol", CAROL_ASKS)):
                asked = daemon.message(text, chat=GROUP, sender=sender, push_name=name)
                assert daemon.next_sent()["reply_to"] == asked
            code, _ = daemon.stop()
            assert code == 0
        finally:
            daemon.close()
    return MediaRecording(workdir, "V1", "I1", edited)
