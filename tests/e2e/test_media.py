"""Voice notes, images and documents through the real daemon over stdio (issue 10).

Each kind goes in as a stdin ``media`` line, against the fake transcription
service (multipart parsed for real) and the fake LLM (content parts checked,
data URLs decoded); what the model saw, what the sender got and what the log
and the store hold are read back from the outside.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from events.model import (
    DocumentRead,
    LlmRequested,
    Media,
    MediaFetched,
    MediaTranscribed,
    MessageReceived,
    MessageSkipped,
    TranscriptionFailed,
)
from tests.e2e.conftest import MakeDaemon
from tests.e2e.harness import ALICE, OWNER_JID, STRANGER, Daemon, run_cli
from tests.llm_server import TEST_KEY, FakeLlmServer, Reply
from tests.media_files import b64, broken_pdf, jpeg, pdf, png, voice_note, write
from tests.transcription_server import FakeTranscriptionServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def heard() -> Iterator[FakeTranscriptionServer]:
    with FakeTranscriptionServer() as server:
        yield server


def with_media(
    make_daemon: MakeDaemon, heard: FakeTranscriptionServer, overrides: dict[str, Any] | None = None
) -> Daemon:
    env = {"TRANSCRIPTION_BASE_URL": f"{heard.base_url}/v1", "TRANSCRIPTION_API_KEY": TEST_KEY}
    return make_daemon(overrides, env=env)


def send_media(daemon: Daemon, msg_id: str, media: dict[str, Any], **fields: Any) -> str:
    daemon.send(id=msg_id, chat=fields.pop("chat", ALICE), media=media, **fields)
    return msg_id


def reply_to(daemon: Daemon, msg_id: str) -> str:
    """The reply to ``msg_id``, without the sources the fake LLM cites."""
    sent = daemon.next_sent()
    assert sent["reply_to"] == msg_id, sent
    return str(sent["text"]).split("\n\nSources:")[0]


def last_user_turn(server: FakeLlmServer) -> Any:
    body = server.requests[-1].json
    turns = body["input"] if "input" in body else body["messages"]
    return turns[-1]["content"]


def media_dir(daemon: Daemon) -> Path:
    return daemon.store / "media"


def test_a_voice_note_is_transcribed_once_and_answered_as_a_transcript(
    make_daemon: MakeDaemon,
    heard: FakeTranscriptionServer,
    llm_server: FakeLlmServer,
    tmp_path: Path,
) -> None:
    daemon = with_media(make_daemon, heard)
    data = voice_note(20_000)
    note = write(tmp_path, "note.ogg", data)
    heard.respond(lambda form: "Wann treffen wir uns morgen?")

    send_media(daemon, "V1", {"kind": "voice", "path": str(note), "seconds": 7})

    said = "[voice note, 7 s, automatic transcript] Wann treffen wir uns morgen?"
    assert reply_to(daemon, "V1") == f"Echo: {said}"
    [form] = heard.forms()
    assert form.fields == {"model": "whisper-1", "response_format": "json"}
    assert (form.filename, form.content_type, form.file) == ("audio.ogg", "audio/ogg", data)
    assert last_user_turn(llm_server) == said
    [done] = daemon.find(MediaTranscribed)
    assert (done.msg_id, done.text, done.model) == (
        "V1",
        "Wann treffen wir uns morgen?",
        "whisper-1",
    )
    assert done.cost_usd == pytest.approx(0.0007)  # 7 s at $0.006 a minute
    # Recorded first, then read from its path beside intake.
    [received] = daemon.find(MessageReceived, msg_id="V1")
    assert received.media is not None
    assert (received.kind, received.media.kind, received.media.fetching) == ("audio", "voice", True)
    [fetched] = daemon.find(MediaFetched, msg_id="V1")
    digest = hashlib.sha256(data).hexdigest()
    assert (fetched.media.kind, fetched.media.sha256, fetched.media.fetching) == (
        "voice",
        digest,
        False,
    )
    assert (fetched.media.size, fetched.media.seconds) == (len(data), 7.0)
    stored = media_dir(daemon) / digest
    assert stored.read_bytes() == data
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(media_dir(daemon).stat().st_mode) == 0o700

    # Replay rebuilds the turn from the recorded transcript, byte for byte, and never
    # transcribes again; a re-run sends the model the same transcript.
    daemon.stop()
    checked = daemon.replay("--chat", "Alice", "--recorded")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.splitlines()[-1] == "1 turn checked: 1 OK, 0 DIFF"
    rerun = daemon.replay("--chat", "Alice", "--prompt", "Be short.", "--json")
    assert rerun.returncode == 0, rerun.stderr
    assert last_user_turn(llm_server) == said
    assert len(heard.forms()) == 1

    audit = run_cli(["audit", "--chat", "Alice", "--store", str(daemon.store)], **_cli(daemon))
    assert f"media voice, audio/ogg, 20 KB, 7 s, sha256 {digest}" in audit.stdout
    assert "transcript (whisper-1, $0.0007): Wann treffen wir uns morgen?" in audit.stdout
    doc = json.loads(
        run_cli(
            ["audit", "--chat", "Alice", "--json", "--store", str(daemon.store)], **_cli(daemon)
        ).stdout
    )
    [message] = doc["turns"][0]["messages"]
    assert message["media"]["sha256"] == digest
    assert [a["text"] for a in message["attached"]] == ["Wann treffen wir uns morgen?"]


@pytest.mark.parametrize("provider", ["perplexity", "openai"])
def test_an_image_goes_to_the_model_as_a_data_url_with_its_caption(
    make_daemon: MakeDaemon,
    heard: FakeTranscriptionServer,
    llm_server: FakeLlmServer,
    provider: str,
) -> None:
    overrides: dict[str, Any] = {"llm": {"provider": provider, "model": "vision-model"}}
    env = {"LLM_API_KEY": TEST_KEY}
    if provider == "openai":
        env["LLM_BASE_URL"] = f"{llm_server.base_url}/v1"
    daemon = make_daemon(overrides, env=env)
    image = png(4, 3)

    send_media(daemon, "I1", {"kind": "image", "data": b64(image)}, text="What colour is it?")

    assert reply_to(daemon, "I1") == "Echo: [image] What colour is it?"
    parts = last_user_turn(llm_server)
    url = f"data:image/png;base64,{base64.b64encode(image).decode()}"  # typed by its bytes
    if provider == "perplexity":
        assert parts == [
            {"type": "input_text", "text": "[image] What colour is it?"},
            {"type": "input_image", "image_url": url},
        ]
    else:
        assert parts == [
            {"type": "text", "text": "[image] What colour is it?"},
            {"type": "image_url", "image_url": {"url": url}},
        ]
    # The log records which file went, never its bytes.
    [request] = daemon.find(LlmRequested)
    assert request.messages[-1].images[0].sha256 == hashlib.sha256(image).hexdigest()
    assert b64(image) not in (daemon.store / "events.db").read_bytes().decode(errors="replace")

    daemon.stop()
    checked = daemon.replay("--chat", "Alice", "--recorded")
    assert checked.stdout.splitlines()[-1] == "1 turn checked: 1 OK, 0 DIFF", checked.stderr
    rerun = daemon.replay("--chat", "Alice", "--prompt", "Describe.", "--json")
    assert rerun.returncode == 0, rerun.stderr
    assert last_user_turn(llm_server) == parts  # the same bytes went again


@pytest.mark.parametrize("provider", ["perplexity", "openai"])
def test_an_albums_photos_in_one_burst_are_one_turn_with_every_image(
    make_daemon: MakeDaemon, llm_server: FakeLlmServer, provider: str
) -> None:
    """WhatsApp sends an album as one message per photo, within a second or two."""
    env = {"LLM_API_KEY": TEST_KEY}
    if provider == "openai":
        env["LLM_BASE_URL"] = f"{llm_server.base_url}/v1"
    shipped = {"polling": {"debounce_seconds": 2.0}}  # the default app.json's debounce
    daemon = make_daemon(
        {**shipped, "llm": {"provider": provider, "model": "vision-model"}}, env=env
    )
    photos = [png(2 + n, 3) for n in range(3)]

    for n, photo in enumerate(photos):
        text = "our trip" if n == 0 else None
        fields = {"text": text} if text else {}
        send_media(daemon, f"A{n}", {"kind": "image", "data": b64(photo)}, **fields)

    assert reply_to(daemon, "A2") == "Echo: [image] our trip\n[image]\n[image]"
    [request] = daemon.find(LlmRequested)
    assert request.trigger_ids == ["A0", "A1", "A2"]
    assert [i.sha256 for i in request.messages[-1].images] == [
        hashlib.sha256(p).hexdigest() for p in photos
    ]
    urls = [f"data:image/png;base64,{base64.b64encode(p).decode()}" for p in photos]
    parts = last_user_turn(llm_server)
    if provider == "perplexity":
        assert [p["image_url"] for p in parts if p["type"] == "input_image"] == urls
    else:
        assert [p["image_url"]["url"] for p in parts if p["type"] == "image_url"] == urls
    assert len(llm_server.requests) == 1


def test_with_vision_off_the_model_is_told_an_image_was_sent(
    make_daemon: MakeDaemon, heard: FakeTranscriptionServer, llm_server: FakeLlmServer
) -> None:
    daemon = with_media(make_daemon, heard, {"media": {"vision": False}})
    send_media(daemon, "I1", {"kind": "image", "data": b64(jpeg())})
    assert reply_to(daemon, "I1") == "Echo: [image, not shown to you]"
    assert last_user_turn(llm_server) == "[image, not shown to you]"


def test_documents_become_context_for_their_turn(
    make_daemon: MakeDaemon,
    heard: FakeTranscriptionServer,
    llm_server: FakeLlmServer,
    tmp_path: Path,
) -> None:
    daemon = with_media(make_daemon, heard, {"limits": {"max_input_chars": 300}})
    report = write(tmp_path, "Bericht.pdf", pdf("Umsatz 2026\nplus 12 Prozent", "Seite zwei"))
    send_media(daemon, "D1", {"kind": "document", "path": str(report)}, text="Summarise")
    reply_to(daemon, "D1")
    assert last_user_turn(llm_server) == (
        '[document "Bericht.pdf", 2 pages: its text follows below] Summarise\n\n'
        '[text of "Bericht.pdf"]\nUmsatz 2026\nplus 12 Prozent\n\nSeite zwei\n'
        '[end of "Bericht.pdf"]'
    )

    notes = "Zeile\n" * 200  # 1200 characters, over max_input_chars
    send_media(
        daemon, "D2", {"kind": "document", "data": b64(notes.encode()), "file_name": "n.txt"}
    )
    reply_to(daemon, "D2")
    turn = last_user_turn(llm_server)
    assert turn.startswith('[document "n.txt": its text follows below]\n\n[text of "n.txt"]\n')
    assert notes[:300] + "\n[… document cut: only its first 300 characters are shown]" in turn

    sheet = {"kind": "document", "data": b64(b"PK\x03\x04 xlsx"), "file_name": "budget.xlsx"}
    send_media(daemon, "D3", sheet)
    reply_to(daemon, "D3")
    assert last_user_turn(llm_server) == (
        '[document "budget.xlsx" (application/vnd.openxmlformats-officedocument.spreadsheetml'
        ".sheet, 1 KB): its contents cannot be read here]"
    )
    reads = daemon.find(DocumentRead)
    assert [(r.msg_id, r.pages, r.cut) for r in reads] == [("D1", 2, False), ("D2", None, True)]


def test_a_sticker_is_ignored_and_never_fetched(
    make_daemon: MakeDaemon, heard: FakeTranscriptionServer, tmp_path: Path
) -> None:
    daemon = with_media(make_daemon, heard)
    sticker = write(tmp_path, "s.webp", b"RIFF\0\0\0\0WEBPVP8 ")
    send_media(daemon, "S1", {"kind": "sticker", "path": str(sticker)})
    assert daemon.wait_event(MessageSkipped, msg_id="S1").reason == "empty"
    assert not media_dir(daemon).exists()


def test_bad_media_is_recorded_the_sender_told_and_the_chat_goes_on(
    make_daemon: MakeDaemon,
    heard: FakeTranscriptionServer,
    llm_server: FakeLlmServer,
    tmp_path: Path,
) -> None:
    daemon = with_media(make_daemon, heard, {"media": {"max_mb": 0.01}})  # 10 KB
    big = write(tmp_path, "big.jpg", jpeg(50_000))

    send_media(daemon, "B1", {"kind": "image", "path": str(big)}, text="and this?")
    assert (
        reply_to(daemon, "B1") == "That image is too large for me (49 KB, over the 0.01 MB limit)."
    )
    send_media(daemon, "B2", {"kind": "image", "data": b64(b"not an image at all")})
    assert reply_to(daemon, "B2") == "I couldn't open that image: the file seems damaged."
    send_media(
        daemon, "B3", {"kind": "image", "data": b64(b"\0\0\0\x18ftypheic"), "mime": "image/heic"}
    )
    assert reply_to(daemon, "B3") == (
        "I can't open that image: image/heic images are not supported "
        "(JPEG, PNG, GIF and WebP are)."
    )
    broken = {"kind": "document", "data": b64(broken_pdf()), "file_name": "x.pdf"}
    send_media(daemon, "B4", broken)
    assert reply_to(daemon, "B4") == "I couldn't read that document: the PDF is damaged."
    send_media(daemon, "B5", {"kind": "voice", "path": str(tmp_path / "gone.ogg")})
    assert reply_to(daemon, "B5") == "I couldn't download that voice note. Could you send it again?"
    send_media(daemon, "B6", {"kind": "voice", "data": "!!not base64!!"})
    assert reply_to(daemon, "B6") == "I couldn't open that voice note: the file seems damaged."
    send_media(daemon, "B7", {"kind": "document", "data": "", "file_name": "empty.txt"})
    assert reply_to(daemon, "B7") == "I couldn't open that document: the file seems damaged."
    after = daemon.message("Still there?")
    assert reply_to(daemon, after) == "Echo: Still there?"

    # A file read beside intake says how it went in its own event.
    recorded: list[MessageReceived | MediaFetched] = [
        *daemon.find(MessageReceived),
        *daemon.find(MediaFetched),
    ]
    problems = {
        ev.msg_id: (ev.media.problem, ev.media.detail) for ev in recorded if ev.media is not None
    }
    assert problems["B1"] == ("too_large", "49 KB, over the 0.01 MB limit")
    assert problems["B2"] == ("corrupt", "not a readable image")
    assert problems["B3"][0] == "unsupported"
    assert problems["B4"] == (None, "")  # stored; its reading failed:
    [unread] = daemon.find(DocumentRead, msg_id="B4")
    assert unread.error.startswith("the PDF is damaged (")
    assert problems["B5"][0] == "download_failed"
    assert f"{tmp_path / 'gone.ogg'}: No such file or directory" in problems["B5"][1]
    assert problems["B6"] == ("corrupt", "media.data is not base64")
    assert problems["B7"] == ("corrupt", "the file is empty")
    assert len(llm_server.requests) == 1  # only "Still there?" went to the model
    assert daemon.alive


def test_a_failed_transcription_gets_an_honest_reply_after_retries(
    make_daemon: MakeDaemon, heard: FakeTranscriptionServer, llm_server: FakeLlmServer
) -> None:
    daemon = with_media(make_daemon, heard, {"media": {"transcription": {"max_retries": 2}}})
    heard.script(Reply(status=500), Reply(status=503), Reply(status=500))

    send_media(daemon, "V1", {"kind": "voice", "data": b64(voice_note(3000)), "seconds": 3})

    assert reply_to(daemon, "V1") == "I couldn't listen to that voice note."
    failures = daemon.find(TranscriptionFailed, msg_id="V1")
    assert [(f.attempt, f.status, f.final) for f in failures] == [
        (1, 500, False),
        (2, 503, False),
        (3, 500, True),
    ]
    assert "server error (HTTP 500)" in failures[-1].error
    assert llm_server.requests == []
    assert daemon.find(MediaTranscribed) == []


def test_a_wrong_transcription_key_is_final_at_once(
    make_daemon: MakeDaemon, heard: FakeTranscriptionServer
) -> None:
    heard.api_key = "another-key"
    daemon = with_media(make_daemon, heard)
    send_media(daemon, "A1", {"kind": "audio", "data": b64(voice_note(3000)), "file_name": "a.mp3"})
    assert reply_to(daemon, "A1") == "I couldn't listen to that audio message."
    [failure] = daemon.find(TranscriptionFailed)
    assert (failure.status, failure.final) == (401, True)


def test_an_unmonitored_chats_media_is_never_fetched_nor_stored(
    make_daemon: MakeDaemon, heard: FakeTranscriptionServer, tmp_path: Path
) -> None:
    daemon = with_media(make_daemon, heard)
    note = write(tmp_path, "n.ogg", voice_note())
    send_media(daemon, "X1", {"kind": "voice", "path": str(note)}, chat=STRANGER)
    mine = daemon.message("hi")
    reply_to(daemon, mine)
    assert not media_dir(daemon).exists()
    assert daemon.find(MessageReceived, msg_id="X1") == []


def test_forget_and_rotation_delete_the_files_no_event_refers_to(
    make_daemon: MakeDaemon, heard: FakeTranscriptionServer
) -> None:
    daemon = with_media(make_daemon, heard)
    shared, alices = png(1, 1), png(5, 5)
    send_media(daemon, "P1", {"kind": "image", "data": b64(shared)})
    reply_to(daemon, "P1")
    send_media(daemon, "P2", {"kind": "image", "data": b64(alices)})
    reply_to(daemon, "P2")
    send_media(daemon, "P3", {"kind": "image", "data": b64(shared)}, chat=OWNER_JID)
    reply_to(daemon, "P3")
    daemon.stop()
    files = {hashlib.sha256(d).hexdigest() for d in (shared, alices)}
    assert set(os.listdir(media_dir(daemon))) == files

    forgot = run_cli(["forget", "--chat", "Alice", "--store", str(daemon.store)], **_cli(daemon))
    assert forgot.returncode == 0, forgot.stderr
    assert forgot.stdout.strip().endswith("; deleted 1 media file")
    # The owner's chat still shows the shared picture: only Alice's own went.
    assert os.listdir(media_dir(daemon)) == [hashlib.sha256(shared).hexdigest()]


def test_the_daemons_rotation_sweeps_the_files_of_the_events_it_removed(
    make_daemon: MakeDaemon, heard: FakeTranscriptionServer
) -> None:
    rotation = {"retention_days": 0.00001, "interval_hours": 0.0003}  # < 1 s kept, ~1 s apart
    daemon = with_media(make_daemon, heard, {"rotation": rotation})
    image = png(2, 7)
    send_media(daemon, "R1", {"kind": "image", "data": b64(image)})
    reply_to(daemon, "R1")
    stored = media_dir(daemon) / hashlib.sha256(image).hexdigest()
    hour_ago = time.time() - 3600  # as old as the event that named it will be
    os.utime(stored, (hour_ago, hour_ago))

    daemon.wait_stderr("media_swept")

    assert not stored.exists()
    assert daemon.find(MessageReceived, msg_id="R1") == []
    assert daemon.alive


def _cli(daemon: Daemon) -> dict[str, Any]:
    return {"cwd": daemon.workdir, "env": daemon.env}


def test_a_media_file_that_never_opens_holds_up_no_chat_and_no_stop(
    make_daemon: MakeDaemon, heard: FakeTranscriptionServer, tmp_path: Path
) -> None:
    """Issue 22.2: a ``media.path`` that blocks on open (a FIFO nobody writes to) is
    recorded at once and answered with a failure; later lines of any chat go on."""
    daemon = with_media(make_daemon, heard)
    fifo = tmp_path / "never.ogg"
    os.mkfifo(fifo)
    send_media(daemon, "F1", {"kind": "voice", "path": str(fifo)})
    mine = daemon.message("still there?", chat=OWNER_JID)

    replies = {sent["reply_to"]: sent["text"] for sent in (daemon.next_sent(), daemon.next_sent())}
    assert replies["F1"] == "I couldn't download that voice note. Could you send it again?"
    assert replies[mine].startswith("Echo: still there?")
    code, stderr = daemon.stop()
    assert code == 0
    assert "exit_forced" not in stderr
    doc = json.loads(
        run_cli(
            ["audit", "--chat", "Alice", "--json", "--store", str(daemon.store)], **_cli(daemon)
        ).stdout
    )
    [message] = doc["turns"][0]["messages"]
    assert message["media"]["problem"] == "download_failed"
    assert message["media"]["detail"] == f"cannot read {fifo}: not a regular file"


def test_a_download_cut_short_by_a_crash_is_answered_after_the_restart(
    make_daemon: MakeDaemon, heard: FakeTranscriptionServer
) -> None:
    """kill -9 during a download: the message is in the log (recorded first), its
    source is not (it went with the process); the next start tells the sender."""
    daemon = with_media(make_daemon, heard)
    daemon.kill9()
    media = Media(kind="voice", mime="audio/ogg", fetching=True)
    daemon.log.append(
        MessageReceived(
            chat=ALICE, msg_id="K1", sender=ALICE, kind="audio", sent_at=time.time(), media=media
        )
    )
    daemon.restart()

    assert reply_to(daemon, "K1") == "I couldn't download that voice note. Could you send it again?"
    [settled] = daemon.find(MediaFetched, msg_id="K1")
    assert (settled.media.problem, settled.media.detail) == (
        "download_failed",
        "the bot stopped before the download finished",
    )


def test_an_attachment_too_long_for_a_stdin_line_is_still_a_message(
    make_daemon: MakeDaemon, heard: FakeTranscriptionServer
) -> None:
    """Its base64 past the 24 MiB a line may hold: the message, its caption and the
    sender's answer stay; only the bytes are not read (shipped ``media`` settings)."""
    daemon = with_media(make_daemon, heard)
    data = "/9j/" * (7 * 2**20)  # 28 MiB of base64: 21 MiB of JPEG, over media.max_mb 16
    send_media(daemon, "T1", {"kind": "image", "data": data}, text="what is this?")
    assert reply_to(daemon, "T1") == (
        "That image is too large for me (21.0 MB, over the 16 MB limit)."
    )
    [received] = daemon.find(MessageReceived, msg_id="T1")
    assert received.text == "what is this?"
    assert received.media is not None
    assert (received.media.problem, received.media.size) == ("too_large", 22_020_096)
    assert "read without its media.data" in daemon.wait_stderr("stdin line 1:")
    assert daemon.alive
