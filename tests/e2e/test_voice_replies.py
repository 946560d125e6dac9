"""Voice replies through the real daemon over stdio (issue 21 item 1).

The fake LLM server speaks OpenAI's ``/v1/audio/speech`` and answers real Ogg
Opus (tests/fixtures/speech.ogg, 1.5 s); the daemon reads its length from the
file's pages, keeps it under ``STORE/media/`` and prints a ``sent`` line with
``media``. Voice notes in are transcribed by the fake transcription service.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from events.model import LlmCompleted, ReplyPlanned, ReplySent, SpeechFailed, SpeechSynthesized
from tests.e2e.conftest import MakeDaemon
from tests.e2e.harness import ALICE, Daemon, entities, replies_to, run_cli
from tests.llm_server import TEST_KEY, FakeLlmServer, Reply
from tests.media_files import voice_note, write
from tests.speech_shapes import SPEECH_AUDIO
from tests.transcription_server import FakeTranscriptionServer

ROOT = Path(__file__).resolve().parents[2]
OGG_OPUS = "audio/ogg; codecs=opus"
SOURCES = "Sources:\n[1] example.com \u2013 Echo news\n[2] docs.example.org \u2013 The echo guide"


@pytest.fixture
def heard() -> Iterator[FakeTranscriptionServer]:
    with FakeTranscriptionServer() as server:
        yield server


def speaking(
    make_daemon: MakeDaemon,
    llm_server: FakeLlmServer,
    heard: FakeTranscriptionServer,
    overrides: dict[str, Any],
) -> Daemon:
    env = {
        "TRANSCRIPTION_BASE_URL": f"{heard.base_url}/v1",
        "TRANSCRIPTION_API_KEY": TEST_KEY,
        "TTS_BASE_URL": f"{llm_server.base_url}/v1",
        "TTS_API_KEY": TEST_KEY,
    }
    return make_daemon(overrides, env=env)


def voice_in(daemon: Daemon, tmp_path: Path, msg_id: str) -> None:
    note = write(tmp_path, f"{msg_id}.ogg", voice_note(8_000))
    daemon.send(id=msg_id, chat=ALICE, media={"kind": "voice", "path": str(note), "seconds": 3})


def assert_voice(daemon: Daemon, sent: dict[str, Any]) -> Path:
    """``sent`` is a voice note of the fixture, stored privately under STORE/media."""
    media = sent["media"]
    assert (media["kind"], media["mime"], media["seconds"]) == ("voice", OGG_OPUS, 2)
    path = Path(media["path"])
    assert path.parent == daemon.store.resolve() / "media" or path.parent == daemon.store / "media"
    assert path.name == hashlib.sha256(SPEECH_AUDIO).hexdigest()
    assert path.read_bytes() == SPEECH_AUDIO
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return path


def test_mirror_answers_a_voice_note_with_one_and_a_text_with_text(
    make_daemon: MakeDaemon,
    llm_server: FakeLlmServer,
    heard: FakeTranscriptionServer,
    tmp_path: Path,
) -> None:
    daemon = speaking(make_daemon, llm_server, heard, {"voice_replies": {"mode": "mirror"}})
    heard.respond(lambda form: "Wie spät ist es?")
    voice_in(daemon, tmp_path, "V1")

    spoken = daemon.next_sent()
    assert spoken["reply_to"] == "V1"
    assert spoken["text"] == "Echo: [voice note, 3 s, automatic transcript] Wie spät ist es?"
    assert_voice(daemon, spoken)
    sources = daemon.next_sent()
    assert (sources["text"], sources.get("media")) == (SOURCES, None)
    assert (spoken["part"], spoken["parts"], sources["part"]) == (1, 2, 2)
    [asked] = llm_server.speeches()
    assert asked == {
        "model": "gpt-4o-mini-tts",
        "input": spoken["text"],
        "voice": "alloy",
        "response_format": "opus",
    }
    assert llm_server.requests[-1].headers["authorization"] == f"Bearer {TEST_KEY}"
    [made] = daemon.find(SpeechSynthesized)
    assert (made.seconds, made.model, made.voice) == (1.5, "gpt-4o-mini-tts", "alloy")
    assert made.cost_usd == pytest.approx(0.000375)  # 1.5 s at $0.015 a minute
    [planned, _] = daemon.find(ReplyPlanned, in_reply_to="V1")
    assert planned.text == spoken["text"]  # the words stay in the log
    daemon.wait_event(ReplySent, reply_id=planned.reply_id)

    daemon.message("And in text?", msg_id="T1")
    texted = daemon.next_sent()
    assert "media" not in texted
    assert texted["text"].startswith("Echo: And in text?")
    assert len(llm_server.speeches()) == 1

    stats = run_cli(["stats", "--store", str(daemon.store)], cwd=daemon.workdir, env=daemon.env)
    assert "speech" in stats.stdout, stats.stdout


def test_always_per_entity_speaks_a_text_and_never_elsewhere(
    make_daemon: MakeDaemon,
    llm_server: FakeLlmServer,
    heard: FakeTranscriptionServer,
    tmp_path: Path,
) -> None:
    overrides = {"voice_replies": {"mode": "never"}, **entities(Alice={"voice_replies": "always"})}
    daemon = speaking(make_daemon, llm_server, heard, overrides)
    daemon.message("Speak to me", msg_id="A1")
    spoken = daemon.next_sent()
    assert spoken["text"] == "Echo: Speak to me"
    assert_voice(daemon, spoken)
    assert daemon.next_sent()["text"] == SOURCES

    daemon.message("and you?", chat="491702222222@s.whatsapp.net", msg_id="X1")
    daemon.expect_no_sent()  # not monitored: nothing at all
    assert len(llm_server.speeches()) == 1


def test_never_answers_a_voice_note_in_text(
    make_daemon: MakeDaemon,
    llm_server: FakeLlmServer,
    heard: FakeTranscriptionServer,
    tmp_path: Path,
) -> None:
    daemon = speaking(make_daemon, llm_server, heard, {})
    voice_in(daemon, tmp_path, "V1")
    sent = daemon.next_sent()
    assert "media" not in sent
    assert sent["text"].endswith(SOURCES)
    daemon.expect_no_sent()
    assert llm_server.speeches() == []
    assert daemon.find(SpeechSynthesized) == []


def test_a_speech_failure_sends_the_words_as_text_and_records_why(
    make_daemon: MakeDaemon,
    llm_server: FakeLlmServer,
    heard: FakeTranscriptionServer,
    tmp_path: Path,
) -> None:
    overrides = {"voice_replies": {"mode": "always", "max_retries": 1}}
    daemon = speaking(make_daemon, llm_server, heard, overrides)
    llm_server.script_speech(Reply(status=503), Reply(status=400))
    daemon.message("Hello there", msg_id="M1")

    sent = daemon.next_sent()
    assert (sent["text"], sent.get("media")) == ("Echo: Hello there", None)
    assert daemon.next_sent()["text"] == SOURCES
    first, final = daemon.find(SpeechFailed)
    assert (first.status, first.attempt, first.final) == (503, 1, False)
    assert (final.status, final.attempt, final.final) == (400, 2, True)
    assert "400" in final.error
    assert daemon.find(SpeechSynthesized) == []
    assert list((daemon.store / "media").glob("*")) == []
    audit = run_cli(
        ["audit", "--chat", "Alice", "--store", str(daemon.store)],
        cwd=daemon.workdir,
        env=daemon.env,
    )
    assert "speech failed" in audit.stdout, audit.stdout


def test_a_long_answer_speaks_max_chars_and_sends_the_rest_as_text(
    make_daemon: MakeDaemon,
    llm_server: FakeLlmServer,
    heard: FakeTranscriptionServer,
    tmp_path: Path,
) -> None:
    overrides = {"voice_replies": {"mode": "always", "max_chars": 150}}
    daemon = speaking(make_daemon, llm_server, heard, overrides)
    sentences = [f"Sentence number {n} says a little more than the one before." for n in range(8)]
    llm_server.respond(lambda body: " ".join(sentences))
    daemon.message("Tell me a lot", msg_id="L1")

    spoken = daemon.next_sent()
    assert_voice(daemon, spoken)
    assert spoken["text"] == " ".join(sentences[:2])  # cut at a sentence, within 150
    rest = daemon.next_sent()
    assert rest["text"] == " ".join(sentences[2:]) + "\n\n" + SOURCES
    assert "media" not in rest
    [asked] = llm_server.speeches()
    assert asked["input"] == spoken["text"]
    [completed] = daemon.find(LlmCompleted)
    assert completed.content == " ".join(sentences)  # the whole answer stays in the log


def test_replay_shows_the_words_and_forget_takes_the_voice_note(
    make_daemon: MakeDaemon,
    llm_server: FakeLlmServer,
    heard: FakeTranscriptionServer,
    tmp_path: Path,
) -> None:
    daemon = speaking(make_daemon, llm_server, heard, {"voice_replies": {"mode": "always"}})
    daemon.message("Say it", msg_id="S1")
    path = assert_voice(daemon, daemon.next_sent())
    daemon.next_sent()
    daemon.wait_event(ReplySent, timeout=10.0)
    daemon.stop()

    checked = daemon.replay("--chat", "Alice", "--recorded")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.splitlines()[-1].endswith("checked: 1 OK, 0 DIFF")
    rerun = daemon.replay("--chat", "Alice", "--prompt", "Be short.")
    assert rerun.returncode == 0, rerun.stderr
    assert "Echo: Say it" in rerun.stdout
    assert len(llm_server.speeches()) == 1  # replay never speaks

    forgot = run_cli(
        ["forget", "--chat", "Alice", "--store", str(daemon.store)],
        cwd=daemon.workdir,
        env=daemon.env,
    )
    assert forgot.returncode == 0, forgot.stderr
    assert "; deleted 1 media file;" in forgot.stdout, forgot.stdout
    assert not path.exists()


def test_rotation_sweeps_a_voice_note_with_its_events(
    make_daemon: MakeDaemon,
    llm_server: FakeLlmServer,
    heard: FakeTranscriptionServer,
) -> None:
    rotation = {"retention_days": 0.00001, "interval_hours": 0.0003}  # < 1 s kept, ~1 s apart
    overrides = {"voice_replies": {"mode": "always"}, "rotation": rotation}
    daemon = speaking(make_daemon, llm_server, heard, overrides)
    daemon.message("Say it", msg_id="S1")
    path = assert_voice(daemon, daemon.next_sent())
    hour_ago = time.time() - 3600  # as old as the event that named it will be
    os.utime(path, (hour_ago, hour_ago))

    daemon.wait_stderr("media_swept")

    assert not path.exists()
    assert daemon.find(SpeechSynthesized) == []
    assert daemon.alive


def test_kill9_during_the_speech_call_speaks_again_and_sends_once(
    make_daemon: MakeDaemon,
    llm_server: FakeLlmServer,
    heard: FakeTranscriptionServer,
) -> None:
    daemon = speaking(make_daemon, llm_server, heard, {"voice_replies": {"mode": "always"}})
    gate = threading.Event()
    llm_server.script_speech(Reply(release=gate))
    msg_id = daemon.message("Speak after a crash")
    planned = daemon.wait_event(ReplyPlanned, in_reply_to=msg_id)
    assert planned.speech is not None  # the speech request is in the log before it is made
    assert llm_server.wait_for_requests(2)  # the LLM call, then the speech call, held
    daemon.kill9()
    gate.set()

    daemon.restart()
    spoken = daemon.next_sent()
    assert spoken["reply_to"] == msg_id
    assert_voice(daemon, spoken)
    assert daemon.next_sent()["text"] == SOURCES
    daemon.wait_event(ReplySent, reply_id=planned.reply_id)
    daemon.stop()

    assert len(replies_to(daemon.all_sent, msg_id)) == 2  # the voice note and the sources, once
    assert len(llm_server.speeches()) == 2  # asked again: the first answer never landed
    [made] = daemon.find(SpeechSynthesized)
    assert made.reply_id == planned.reply_id
    assert len(daemon.find(LlmCompleted)) == 1  # the answer itself was not asked for again
