"""The transcription client against the fake service over real HTTP: the multipart form,
the transcript, its price, and failures retried or final exactly like LLM calls."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.llm import KeyRejected, LlmError, MalformedResponse, Transcriber
from tests.llm_server import Reply
from tests.media_files import voice_note, write
from tests.test_llm_client import Recorder
from tests.transcription_server import TEST_KEY, FakeTranscriptionServer

pytestmark = pytest.mark.anyio


@pytest.fixture
def heard() -> Iterator[FakeTranscriptionServer]:
    with FakeTranscriptionServer(seconds=30.0) as server:
        yield server


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


def transcriber(
    server: FakeTranscriptionServer, rec: Recorder, *, language: str | None = None
) -> Transcriber:
    return Transcriber(
        base_url=f"{server.base_url}/v1",
        api_key=TEST_KEY,
        model="whisper-1",
        language=language,
        timeout=5.0,
        max_retries=2,
        price_per_minute=0.006,
        sleep=rec.sleep,
        jitter=lambda: 0.0,
    )


@pytest.fixture
def note(tmp_path: Path) -> Path:
    return write(tmp_path, "3f2a", voice_note(50_000))  # stored files have no suffix


async def test_a_voice_note_goes_out_as_the_form_openai_documents(
    heard: FakeTranscriptionServer, rec: Recorder, note: Path
) -> None:
    client = transcriber(heard, rec, language="de")
    try:
        result = await client.transcribe(note, mime="audio/ogg; codecs=opus", seconds=29.0)
    finally:
        await client.aclose()

    [form] = heard.forms()
    assert form.fields == {"model": "whisper-1", "response_format": "json", "language": "de"}
    assert (form.filename, form.content_type) == ("audio.ogg", "audio/ogg")
    assert form.file == note.read_bytes()
    [request] = heard.requests
    assert request.headers["authorization"] == f"Bearer {TEST_KEY}"
    assert result.text == "Heard 50000 bytes"
    assert (result.model, result.seconds) == ("whisper-1", 30.0)  # the service's measure wins
    assert result.cost_usd == pytest.approx(0.003)  # half a minute at $0.006
    assert result.latency_ms > 0


async def test_without_a_measure_from_the_service_the_declared_length_is_priced(
    heard: FakeTranscriptionServer, rec: Recorder, note: Path
) -> None:
    heard.script(Reply(body={"text": " Hallo "}))  # whisper.cpp's server says no more
    client = transcriber(heard, rec)
    try:
        result = await client.transcribe(note, mime="audio/ogg", seconds=90.0)
    finally:
        await client.aclose()
    assert (result.text, result.seconds, result.cost_usd) == ("Hallo", 90.0, 0.009)
    assert "language" not in heard.forms()[0].fields


async def test_without_a_measure_or_a_declared_length_the_files_own_is_priced(
    heard: FakeTranscriptionServer, rec: Recorder, tmp_path: Path
) -> None:
    """A voice note without ``seconds`` to a server without usage: its cost was None, so
    it never counted against the budget."""
    heard.script(Reply(body={"text": "hi"}), Reply(body={"text": "hi"}))
    speech = write(tmp_path, "5e1b", (Path(__file__).parent / "fixtures/speech.ogg").read_bytes())
    client = transcriber(heard, rec)
    try:
        result = await client.transcribe(speech, mime="audio/ogg; codecs=opus")
        unknown = await client.transcribe(write(tmp_path, "6c2d", b"not ogg"), mime="audio/ogg")
    finally:
        await client.aclose()
    assert result.seconds == 1.5
    assert result.cost_usd == pytest.approx(0.006 * 1.5 / 60)
    assert (unknown.seconds, unknown.cost_usd) == (None, None)  # no length to be had


async def test_a_reported_cost_is_taken_as_it_is(
    heard: FakeTranscriptionServer, rec: Recorder, note: Path
) -> None:
    heard.script(Reply(body={"text": "hi", "usage": {"seconds": 9.2, "cost": 0.000508}}))
    client = transcriber(heard, rec)
    try:
        result = await client.transcribe(note, mime="audio/ogg")
    finally:
        await client.aclose()
    assert (result.seconds, result.cost_usd) == (9.2, 0.000508)


async def test_server_errors_are_retried_with_backoff_then_succeed(
    heard: FakeTranscriptionServer, rec: Recorder, note: Path
) -> None:
    heard.script(Reply(status=500), Reply(status=429, headers={"retry-after": "3"}))
    client = transcriber(heard, rec)
    try:
        result = await client.transcribe(note, mime="audio/ogg", on_failure=rec.on_failure)
    finally:
        await client.aclose()
    assert result.text == "Heard 50000 bytes"
    assert rec.failures == [("server", 500, 1, False), ("rate_limited", 429, 2, False)]
    assert rec.delays == [0.5, 3.0]  # the LLM client's backoff; retry-after honoured
    assert len(heard.forms()) == 3  # the file went out whole every time
    assert all(f.file == note.read_bytes() for f in heard.forms())


async def test_giving_up_after_max_retries(
    heard: FakeTranscriptionServer, rec: Recorder, note: Path
) -> None:
    heard.script(*[Reply(status=503)] * 3)
    client = transcriber(heard, rec)
    try:
        with pytest.raises(LlmError, match=r"server error \(HTTP 503\)"):
            await client.transcribe(note, mime="audio/ogg", on_failure=rec.on_failure)
    finally:
        await client.aclose()
    assert [f[2:] for f in rec.failures] == [(1, False), (2, False), (3, True)]


async def test_a_wrong_key_is_final_and_says_so(
    heard: FakeTranscriptionServer, rec: Recorder, note: Path
) -> None:
    heard.api_key = "another-key"
    client = transcriber(heard, rec)
    try:
        with pytest.raises(KeyRejected, match="API key rejected"):
            await client.transcribe(note, mime="audio/ogg", on_failure=rec.on_failure)
    finally:
        await client.aclose()
    assert rec.failures == [("auth", 401, 1, True)]


async def test_a_format_the_service_refuses_is_final_with_its_words(
    heard: FakeTranscriptionServer, rec: Recorder, note: Path
) -> None:
    client = transcriber(heard, rec)
    try:
        with pytest.raises(LlmError, match=r"bad request \(HTTP 400\): Invalid file format"):
            await client.transcribe(note, mime="audio/amr", file_name="memo.amr")
    finally:
        await client.aclose()


async def test_an_answer_without_text_is_malformed(
    heard: FakeTranscriptionServer, rec: Recorder, note: Path
) -> None:
    heard.script(Reply(body={"transcript": "hi"}), Reply(body="<html>oops</html>"))
    client = transcriber(heard, rec)
    try:
        with pytest.raises(MalformedResponse, match="missing required field `text`"):
            await client.transcribe(note, mime="audio/ogg")
        with pytest.raises(MalformedResponse, match="not JSON"):
            await client.transcribe(note, mime="audio/ogg")
    finally:
        await client.aclose()


async def test_a_missing_file_is_final(heard: FakeTranscriptionServer, rec: Recorder) -> None:
    client = transcriber(heard, rec)
    try:
        with pytest.raises(LlmError, match="cannot read the audio file"):
            await client.transcribe(Path("/nonexistent/0a1b"), mime="audio/ogg")
    finally:
        await client.aclose()
    assert heard.requests == []
