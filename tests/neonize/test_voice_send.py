"""A voice reply as the recording Go fake sees it: uploaded, then sent as push-to-talk
audio with its mimetype, seconds and waveform (issue 21 item 1)."""

from __future__ import annotations

import tests.neonize_quiet  # noqa: F401  (first: see there)

# isort: split
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from neonize.utils.enum import MediaType

from events.backends import open_log
from events.model import Quoted, ReplyPlanned, ReplySent, SpeechPlan, TransportStatus
from events.testing import FakeClock
from pipeline.config import LoadedConfig, Secrets, config_from_dict
from pipeline.daemon import FoldedLog, Sender, Settings
from pipeline.daemon._speaker import Speaker
from pipeline.llm import LlmPool
from pipeline.media import MediaStore
from pipeline.transport import Outgoing, TransportError, Voice
from tests.llm_server import TEST_KEY, FakeLlmServer
from tests.neonize_fakes import ALICE, running
from tests.speech_shapes import SPEECH_AUDIO

ALICE_JID = f"{ALICE}@s.whatsapp.net"


@pytest.fixture
def server() -> Iterator[FakeLlmServer]:
    with FakeLlmServer() as made:
        yield made


@pytest.mark.anyio
async def test_a_voice_reply_goes_as_ptt_opus_audio_with_its_seconds(
    make_transport: Any, server: FakeLlmServer, tmp_path: Path
) -> None:
    config = config_from_dict(
        {
            "whatsapp": {"phone_number": "491700000000"},
            "monitored_entities": [{"type": "user", "jid": ALICE_JID}],
            "voice_replies": {"mode": "always", "base_url": f"{server.base_url}/v1"},
        }
    )
    loaded = LoadedConfig(
        config=config, hash="h", path="app.json", secrets=Secrets(speech_key=TEST_KEY)
    )
    clock = FakeClock(1_764_070_000.0)
    folded = FoldedLog(open_log(tmp_path / "events.db", clock=clock))
    pool = LlmPool()
    speaker = Speaker(folded, pool.synthesizer, MediaStore(tmp_path / "media"))
    plan = SpeechPlan(model="gpt-4o-mini-tts", voice="alloy")
    quoted = Quoted(id="3EB0V", text="[voice note]", sender=ALICE_JID)
    try:
        async with running(*make_transport()) as session:
            await session.connected()
            sender = Sender(
                folded, session.transport, Settings(loaded), clock=clock, speaker=speaker
            )
            await folded.append(
                TransportStatus(state="connected"),
                ReplyPlanned(
                    chat=ALICE_JID,
                    reply_id="R1",
                    purpose="reply",
                    text="Hi Alice!",
                    speech=plan,
                    quoted=quoted,
                ),
            )
            await sender.send_due()
        events = [r.event for r in folded.log.read()]
    finally:
        folded.close()
        await pool.aclose()

    [(data, media_type)] = session.go.uploads
    assert (data, media_type) == (SPEECH_AUDIO, MediaType.MediaAudio.value)
    [(jid, message)] = session.go.sent
    assert jid.User == ALICE
    audio = message.audioMessage
    assert message.HasField("audioMessage")
    assert not message.conversation
    assert audio.PTT is True
    assert audio.mimetype == "audio/ogg; codecs=opus"
    assert audio.seconds == 2  # 1.5 s of Opus, as its Ogg pages say
    assert len(audio.waveform) == 64
    assert max(audio.waveform) == 100
    assert audio.fileSHA256 == hashlib.sha256(SPEECH_AUDIO).digest()
    assert audio.fileLength == len(SPEECH_AUDIO)
    assert audio.URL.startswith("https://mmg.whatsapp.net/")
    assert audio.directPath
    assert audio.mediaKey
    assert audio.fileEncSHA256
    assert audio.contextInfo.stanzaID == "3EB0V"
    assert any(isinstance(e, ReplySent) for e in events)


@pytest.mark.anyio
async def test_a_failed_upload_is_a_retryable_send_failure(
    make_transport: Any, tmp_path: Path
) -> None:
    note = tmp_path / "note.ogg"
    note.write_bytes(SPEECH_AUDIO)
    async with running(*make_transport()) as session:
        await session.connected()
        session.go.upload_error = "failed to upload: 503"
        with pytest.raises(TransportError) as raised:
            await session.transport.send(
                Outgoing(to=ALICE_JID, text="hi", voice=Voice(path=str(note), seconds=2))
            )
    assert raised.value.retryable
    assert "503" in str(raised.value)
    assert session.go.sent == []


@pytest.mark.anyio
async def test_an_upload_that_never_returns_fails_the_send_at_its_deadline(
    make_transport: Any, tmp_path: Path
) -> None:
    """whatsmeow uploads media with no timeout: the chat's later replies must not wait
    on a stalled upload for as long as the OS keeps the connection."""
    note = tmp_path / "note.ogg"
    note.write_bytes(SPEECH_AUDIO)
    async with running(*make_transport(upload_wait=0.05)) as session:
        await session.connected()
        session.go.upload_hang = True
        with pytest.raises(TransportError) as raised:
            await session.transport.send(
                Outgoing(to=ALICE_JID, text="hi", voice=Voice(path=str(note), seconds=2))
            )
    assert raised.value.retryable
    assert str(raised.value) == "the voice note was not uploaded within 0.05 s"
    assert len(session.go.uploads) == 1
    assert session.go.sent == []


@pytest.mark.anyio
async def test_a_voice_note_file_that_is_gone_fails_for_good(
    make_transport: Any, tmp_path: Path
) -> None:
    async with running(*make_transport()) as session:
        await session.connected()
        with pytest.raises(TransportError) as raised:
            await session.transport.send(
                Outgoing(to=ALICE_JID, text="hi", voice=Voice(path=str(tmp_path / "x"), seconds=2))
            )
    assert not raised.value.retryable
    assert "cannot read the voice note" in str(raised.value)
