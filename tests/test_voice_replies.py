"""Voice replies in parts: the Ogg Opus reader, the mode rule, the spoken cut, the
speech client on the real HTTP fake, and the sender speaking once across restarts."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from events.backends import open_log
from events.model import (
    AnyEvent,
    Citation,
    Media,
    Recorded,
    ReplyPlanned,
    ReplySent,
    SpeechFailed,
    SpeechPlan,
    SpeechSynthesized,
)
from events.model import TransportStatus as Status
from events.testing import FakeClock
from pipeline.config import ConfigError, LoadedConfig, Secrets, config_from_dict
from pipeline.daemon import FoldedLog, Sender, Settings
from pipeline.daemon._speaker import Speaker
from pipeline.daemon._voice import missing_speech_key, speaks, speech_plan, spoken_chars
from pipeline.llm import LlmPool, MalformedResponse, spoken_reply
from pipeline.media import OGG_OPUS, MediaStore, NotOpus, opus_info, whole_seconds
from pipeline.transport import MemoryTransport, TransportError, received_message
from projections import budget, outbox
from projections.fold import fold
from projections.queue import Item
from tests.llm_server import TEST_KEY, FakeLlmServer, Reply
from tests.speech_shapes import SPEECH_AUDIO, SPEECH_SECONDS

ALICE = "491701111111@s.whatsapp.net"
NOW = 1_764_070_000.0


# -- the Ogg Opus reader ---------------------------------------------------------


def pages(data: bytes) -> list[int]:
    """Where each Ogg page of ``data`` starts."""
    starts, at = [], 0
    while at < len(data):
        starts.append(at)
        count = data[at + 26]
        at += 27 + count + sum(data[at + 27 : at + 27 + count])
    return starts


def test_the_fixtures_length_is_its_last_granule_minus_the_pre_skip() -> None:
    info = opus_info(SPEECH_AUDIO)
    assert info.seconds == SPEECH_SECONDS
    pre_skip = struct.unpack_from("<H", SPEECH_AUDIO, pages(SPEECH_AUDIO)[0] + 28 + 10)[0]
    last = pages(SPEECH_AUDIO)[-1]
    granule = struct.unpack_from("<q", SPEECH_AUDIO, last + 6)[0]
    assert info.seconds == (granule - pre_skip) / 48_000
    assert len(info.waveform) == 64
    assert max(info.waveform) == 100
    assert min(info.waveform) > 0  # the tone is never silent in the middle


@pytest.mark.parametrize(
    ("cut", "error"),
    [
        (lambda d: d[:-10], "truncated Ogg page at byte"),
        (lambda d: d[: pages(d)[-1] + 5], "truncated Ogg page header at byte"),
        (lambda d: d[: pages(d)[1]] + b"Oggs" + d[pages(d)[1] + 4 :], "not an Ogg page at byte"),
        (lambda d: b"", "empty file"),
        (lambda d: d[: pages(d)[2]], "no audio"),
        (lambda d: d.replace(b"OpusHead", b"vorbis\x00\x00"), "not Ogg Opus"),
        (lambda d: b"ID3\x04" + bytes(200), "not an Ogg page at byte 0"),
    ],
)
def test_a_broken_file_raises_one_clear_line(cut, error) -> None:
    with pytest.raises(NotOpus, match=error) as raised:
        opus_info(cut(SPEECH_AUDIO))
    assert "\n" not in str(raised.value)


def test_a_page_in_the_middle_names_its_offset() -> None:
    second = pages(SPEECH_AUDIO)[3]
    broken = SPEECH_AUDIO[:second] + b"XXXX" + SPEECH_AUDIO[second + 4 :]
    with pytest.raises(NotOpus, match=f"not an Ogg page at byte {second}$"):
        opus_info(broken)


def test_whatsapp_is_told_whole_seconds_never_zero() -> None:
    assert [whole_seconds(s) for s in (0.02, 0.6, 1.5, 2.4, 61.7)] == [1, 1, 2, 2, 62]


# -- the mode rule ----------------------------------------------------------------


def item(msg_id: str, voice: bool = False) -> Item:
    media = Media(kind="voice", mime="audio/ogg", sha256="a" * 64) if voice else None
    message = received_message(chat=ALICE, msg_id=msg_id, text="", sent_at=NOW, media=media)
    return Item(message=message, ts=NOW, seq=1)


@pytest.mark.parametrize(
    ("mode", "voices", "spoken"),
    [
        ("never", [True], False),
        ("mirror", [False], False),
        ("mirror", [False, True], True),
        ("mirror", [True, False], True),
        ("always", [False], True),
    ],
)
def test_the_mode_says_which_answers_are_spoken(mode, voices, spoken) -> None:
    run = [item(f"M{n}", voice) for n, voice in enumerate(voices)]
    assert speaks(mode, run) is spoken


def test_an_entity_overrides_the_global_mode_and_the_plan_names_model_and_voice() -> None:
    config = config_from_dict(
        {
            "whatsapp": {"phone_number": "491700000000"},
            "voice_replies": {"mode": "always", "model": "tts-1", "voice": "nova"},
            "monitored_entities": [
                {"type": "user", "jid": ALICE, "voice_replies": "never"},
                {"type": "self"},
            ],
        }
    )
    alice, owner = config.monitored_entities
    assert speech_plan(config, alice, [item("M1", voice=True)]) is None
    assert speech_plan(config, owner, [item("M1")]) == SpeechPlan(model="tts-1", voice="nova")


def test_an_unknown_mode_is_a_config_error_naming_the_field() -> None:
    with pytest.raises(ConfigError, match=r"voice_replies\.mode"):
        config_from_dict(
            {"whatsapp": {"phone_number": "491700000000"}, "voice_replies": {"mode": "sometimes"}}
        )


# -- what is spoken -------------------------------------------------------------


def test_the_words_are_spoken_without_markers_and_the_sources_follow_as_text() -> None:
    cites = [Citation(url="https://example.com/a", title="A")]
    words, rest = spoken_reply("Lima is the capital [1].", cites, 1500)
    assert words == "Lima is the capital."
    assert rest == "Sources:\n[1] example.com \u2013 A"
    assert spoken_reply("Short.", [], 1500) == ("Short.", "")


def test_a_long_answer_is_cut_at_a_sentence_within_max_chars() -> None:
    text = "One sentence here. " * 10 + "Last."
    words, rest = spoken_reply(text, [], 60)
    assert words == "One sentence here. One sentence here. One sentence here."
    assert len(words) <= 60
    assert f"{words} {rest}" == text.strip()


# -- the speech client --------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[FakeLlmServer]:
    with FakeLlmServer() as made:
        yield made


def loaded_for(server: FakeLlmServer, **voice: object) -> LoadedConfig:
    config = config_from_dict(
        {
            "whatsapp": {"phone_number": "491700000000"},
            "monitored_entities": [{"type": "user", "jid": ALICE}],
            "voice_replies": {"base_url": f"{server.base_url}/v1", "max_retries": 0, **voice},
        }
    )
    return LoadedConfig(
        config=config, hash="h", path="app.json", secrets=Secrets(speech_key=TEST_KEY)
    )


@pytest.mark.anyio
async def test_speech_that_is_not_ogg_opus_is_a_malformed_answer(server: FakeLlmServer) -> None:
    server.speech_audio = b"ID3\x04 an mp3"
    pool = LlmPool()
    try:
        with pytest.raises(MalformedResponse, match=r"not Ogg Opus \(audio/ogg\)"):
            await pool.synthesizer(loaded_for(server)).speak("hi", voice="alloy")
    finally:
        await pool.aclose()


# -- the sender speaks once ---------------------------------------------------------


class Rig:
    def __init__(self, path: Path, server: FakeLlmServer) -> None:
        self.clock = FakeClock(NOW)
        self.loaded = loaded_for(server)
        self.pool = LlmPool()
        self.store = MediaStore(path / "media")
        self.log_path = path / "events.db"
        self.folded = FoldedLog(open_log(self.log_path, clock=self.clock))
        self.transport = MemoryTransport(clock=self.clock)
        self.sender = self.make_sender()

    def make_sender(self) -> Sender:
        speaker = Speaker(self.folded, self.pool.synthesizer, self.store)
        return Sender(
            self.folded, self.transport, Settings(self.loaded), clock=self.clock, speaker=speaker
        )

    def restart(self) -> None:
        self.folded.close()
        self.folded = FoldedLog(open_log(self.log_path, clock=self.clock))
        self.sender = self.make_sender()

    def found(self, kind: type[AnyEvent]) -> list[AnyEvent]:
        return [r.event for r in self.folded.log.read() if isinstance(r.event, kind)]


@pytest.fixture
async def rig(tmp_path: Path, server: FakeLlmServer) -> AsyncIterator[Rig]:
    made = Rig(tmp_path, server)
    yield made
    made.folded.close()
    await made.pool.aclose()


def spoken(reply_id: str = "R1") -> ReplyPlanned:
    plan = SpeechPlan(model="gpt-4o-mini-tts", voice="alloy")
    return ReplyPlanned(
        chat=ALICE,
        reply_id=reply_id,
        purpose="reply",
        text="Hello, Alice.",
        wa_id=reply_id,
        speech=plan,
    )


@pytest.mark.anyio
async def test_a_send_that_fails_after_the_speech_is_retried_without_speaking_again(
    rig: Rig, server: FakeLlmServer
) -> None:
    await rig.folded.append(Status(state="connected"), spoken())
    rig.transport.fail_next(TransportError("not connected", retryable=True))
    wake = await rig.sender.send_due()
    assert rig.transport.sent == []
    rig.restart()  # the speech is in the log: a new process sends the stored file
    rig.clock.now = max(rig.clock.now, wake)
    await rig.sender.send_due()

    [sent] = rig.transport.sent
    voice = sent.message.voice
    assert voice is not None
    assert (voice.mime, voice.seconds, len(voice.waveform)) == (OGG_OPUS, 2, 64)
    assert Path(voice.path).read_bytes() == SPEECH_AUDIO
    assert sent.text == "Hello, Alice."
    assert len(server.speeches()) == 1
    [made] = rig.found(SpeechSynthesized)
    assert isinstance(made, SpeechSynthesized)
    assert made.sha256 == Path(voice.path).name
    assert len(rig.found(ReplySent)) == 1


@pytest.mark.anyio
async def test_a_stored_note_gone_missing_goes_as_text(rig: Rig, server: FakeLlmServer) -> None:
    await rig.folded.append(Status(state="connected"), spoken())
    rig.transport.fail_next(TransportError("not connected", retryable=True))
    wake = await rig.sender.send_due()
    for file in rig.store.directory.iterdir():
        file.unlink()
    rig.clock.now = max(rig.clock.now, wake)
    await rig.sender.send_due()
    [sent] = rig.transport.sent
    assert (sent.message.voice, sent.text) == (None, "Hello, Alice.")
    assert len(server.speeches()) == 1


@pytest.mark.anyio
async def test_speech_refused_for_good_sends_the_text_once(rig: Rig, server: FakeLlmServer) -> None:
    server.script_speech(Reply(status=401, body={"error": {"message": "bad key"}}))
    await rig.folded.append(Status(state="connected"), spoken())
    await rig.sender.send_due()
    [sent] = rig.transport.sent
    assert (sent.message.voice, sent.text) == (None, "Hello, Alice.")
    [failed] = rig.found(SpeechFailed)
    assert isinstance(failed, SpeechFailed)
    assert (failed.reply_id, failed.status, failed.final) == ("R1", 401, True)
    rig.restart()
    await rig.sender.send_due()
    assert len(rig.transport.sent) == 1
    assert len(server.speeches()) == 1


def test_speaking_never_outgrows_one_message_and_a_missing_key_is_noticed() -> None:
    def loaded(voice: dict[str, object], key: str | None, **whatsapp: object) -> LoadedConfig:
        config = config_from_dict(
            {
                "whatsapp": {"phone_number": "491700000000", **whatsapp},
                "monitored_entities": [{"type": "user", "jid": ALICE}],
                "voice_replies": voice,
            }
        )
        return LoadedConfig(config=config, hash="h", path="a", secrets=Secrets(speech_key=key))

    assert spoken_chars(loaded({}, None).config) == 1500
    assert spoken_chars(loaded({}, None, max_message_chars=300).config) == 300
    assert not missing_speech_key(loaded({}, None))  # never: nothing is spoken
    assert missing_speech_key(loaded({"mode": "mirror"}, None))
    assert not missing_speech_key(loaded({"mode": "mirror"}, "sk-x"))
    local: dict[str, object] = {"mode": "always", "base_url": "http://127.0.0.1:8880/v1"}
    assert not missing_speech_key(loaded(local, None))


def test_speech_counts_against_the_budget_and_the_outbox_knows_it_is_spoken() -> None:
    made = SpeechSynthesized(
        chat=ALICE,
        reply_id="R1",
        sha256="c" * 64,
        size=9968,
        seconds=1.5,
        model="gpt-4o-mini-tts",
        voice="alloy",
        cost_usd=0.000375,
    )
    events: list[AnyEvent] = [
        spoken("R1"),
        made,
        spoken("R2"),
        SpeechFailed(chat=ALICE, reply_id="R2", error="x", final=True),
    ]
    history = [Recorded(seq=n, ts=NOW + n, event=ev) for n, ev in enumerate(events, start=1)]
    states = fold(history)
    assert budget.spent_since(states.budget, 0.0, "speech") == 0.000375
    assert budget.spent_since(states.budget, 0.0) == 0.000375
    assert states.stats.spend_usd["speech"] == 0.000375
    first, second = outbox.unsent(states.outbox)
    assert (first.speech, first.unspoken, first.speech_due) == (made, False, False)
    assert (second.speech, second.unspoken, second.speech_due) == (None, True, False)
