"""``rotation.drop_expired_sessions``: a rotation also removes the texts of ended sessions."""

import os
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from msgspec.structs import replace

from events.backends import open_log
from events.model import (
    ChatTurn,
    Compacted,
    ConfigLoaded,
    DocumentRead,
    LlmCompleted,
    LlmFailed,
    LlmRequested,
    Media,
    MediaFetched,
    MessageReceived,
    MessageSkipped,
    ReplyPlanned,
    ReplySent,
    SessionStarted,
    SpeechFailed,
    SpeechPlan,
    SpeechSynthesized,
)
from events.testing import FakeClock
from events.units import DAY, HOUR
from pipeline.daemon._folded_log import FoldedLog
from pipeline.daemon._settings import config_loaded
from pipeline.media import MediaStore
from projections.fold import fold
from projections.session_texts import Texts
from tests import test_scheduler
from tests.test_scheduler import ALICE, Bot, at

make_bot = test_scheduler.make_bot  # the fixture: bots on a fake clock
BOB = "491702222222@s.whatsapp.net"
DROPPING = {"retention_days": 30, "interval_hours": 1, "drop_expired_sessions": True}
IDLE_HOUR = {"mode": "idle", "ttl_minutes": 60}


def _turn(
    bot: Bot,
    when: float,
    chat: str,
    n: int,
    words: str,
    *,
    fetched: Media | None = None,
    spoken: list[SpeechSynthesized | SpeechFailed] | None = None,
) -> None:
    """One exchange of session ``S{n}`` in ``chat``: message (a document), request,
    answer, reply. ``fetched``: its attachment, fetched after it (as WhatsApp's are);
    ``spoken``: the reply is a voice note, and this is what came of speaking it."""
    msg, call, session = f"M{n}", f"C{n}", f"S{n}"
    plan = None if spoken is None else SpeechPlan(model="gpt-4o-mini-tts", voice="alloy")
    pending = None if fetched is None else replace(fetched, sha256="", fetching=True)
    bot.append(
        when,
        MessageReceived(chat=chat, msg_id=msg, sender=chat, text=words, media=pending),
        *([] if fetched is None else [MediaFetched(chat=chat, msg_id=msg, media=fetched)]),
        DocumentRead(chat=chat, msg_id=msg, text=f"document of {words}"),
        SessionStarted(chat=chat, session_id=session, user=chat, reason="new"),
        LlmRequested(
            chat=chat,
            call_id=call,
            session_id=session,
            trigger_ids=[msg],
            model="m",
            params={},
            messages=[ChatTurn("user", words)],
            config_hash="h",
        ),
        LlmCompleted(chat=chat, call_id=call, content=f"answer to {words}"),
        ReplyPlanned(
            chat=chat,
            reply_id=f"R{n}",
            purpose="reply",
            text=f"answer to {words}",
            call_id=call,
            trigger_ids=[msg],
            speech=plan,
        ),
        *(spoken or []),
        ReplySent(chat=chat, reply_id=f"R{n}", wa_id=f"W{n}", sent_at=when),
    )


def _texts(bot: Bot) -> str:
    return " ".join(str(r.event) for r in bot.records() if not isinstance(r.event, Compacted))


def _expiries(bot: Bot) -> list[Compacted]:
    return [
        r.event
        for r in bot.records()
        if isinstance(r.event, Compacted) and r.event.reason == "expiry"
    ]


@pytest.mark.anyio
async def test_an_expired_sessions_texts_go_at_rotation_and_the_live_ones_stay(
    make_bot: Any,
) -> None:
    nine = at("2025-06-02 09:00")
    bot = make_bot(nine, rotation=DROPPING, session_memory=IDLE_HOUR)
    bot.append(nine, config_loaded(bot.settings.loaded))  # as the daemon records it at start
    _turn(bot, nine, ALICE, 1, "alice-secret")
    bot.append(nine + 60, MessageReceived(chat=BOB, msg_id="G1", sender=BOB, text="bob-waits"))
    _turn(bot, nine + 100 * 60, BOB, 2, "bob-live")  # Alice's session has been idle 100 min

    await bot.tick(nine + 101 * 60)

    [marker] = _expiries(bot)
    # Her words at once; the answer and reply once the budget no longer counts them.
    assert marker.by_type == {"DocumentRead": 1, "LlmRequested": 1, "MessageReceived": 1}
    texts = _texts(bot)
    assert texts.count("alice-secret") == texts.count("answer to alice-secret") == 2
    assert "bob-live" in texts
    assert "bob-waits" in texts  # no call took it yet: not a session's

    bot.append(nine + 102 * 60, MessageSkipped(chat=BOB, msg_id="G1", reason="not_triggered"))
    await bot.tick(nine + 9 * DAY)

    assert "alice-secret" not in _texts(bot)
    assert "bob-live" not in _texts(bot)  # expired meanwhile
    assert [m.reason for m in _expiries(bot)] == ["expiry", "expiry"]


def test_the_compact_command_drops_them_too(tmp_path: Path) -> None:
    clock = FakeClock(time.time() - 3 * HOUR)
    log = open_log(tmp_path, clock=clock)
    config = {"whatsapp": {"phone_number": "491700000000"}, "rotation": DROPPING}
    log.append(ConfigLoaded(hash="h", config=config, path="app.json"))
    bot = Bot.__new__(Bot)  # only its append, on this log
    bot.clock, bot.folded = clock, FoldedLog(log)
    _turn(bot, clock.now, ALICE, 1, "alice-secret")
    bot.folded.close()
    assert b"alice-secret" in _snapshots(tmp_path)  # her session, as the bot left it

    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "compact", "--store", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "nothing older than 30 days to remove; removed 3 events of ended sessions"
    )
    assert b"alice-secret" not in _snapshots(tmp_path)


@pytest.mark.anyio
async def test_without_the_setting_sessions_stay_until_the_retention(make_bot: Any) -> None:
    nine = at("2025-06-02 09:00")
    bot = make_bot(nine, rotation={**DROPPING, "drop_expired_sessions": False})
    bot.append(nine, config_loaded(bot.settings.loaded))
    _turn(bot, nine, ALICE, 1, "alice-secret")

    await bot.tick(nine + 3 * HOUR)

    assert _expiries(bot) == []
    assert "alice-secret" in _texts(bot)
    # Nothing is followed for a setting that is off: no int per event held in memory.
    sessions = bot.folded.view.sessions
    assert [s.texts.words for s in sessions.sessions.values()] == [[]]
    assert not sessions.ended
    assert not sessions.replying


@pytest.mark.anyio
async def test_turning_the_setting_off_lets_go_of_what_was_followed(make_bot: Any) -> None:
    nine = at("2025-06-02 09:00")
    bot = make_bot(nine, rotation=DROPPING)
    bot.append(nine, config_loaded(bot.settings.loaded))
    _turn(bot, nine, ALICE, 1, "alice-secret")
    bot.folded.catch_up()
    assert [s.texts.words for s in bot.folded.view.sessions.sessions.values()] != [[]]

    off = ConfigLoaded(hash="h2", config={"rotation": {"drop_expired_sessions": False}}, path="")
    bot.append(nine + 60, off)
    bot.folded.catch_up()

    assert [s.texts.words for s in bot.folded.view.sessions.sessions.values()] == [[]]


def _snapshots(store: Path) -> bytes:
    """Every snapshot row of the log in ``store``, as stored."""
    with closing(sqlite3.connect(store / "events.db")) as db:
        return b"".join(bytes(state) for (state,) in db.execute("SELECT state FROM snapshots"))


@pytest.mark.anyio
async def test_an_expired_sessions_words_leave_the_state_and_its_snapshots(
    make_bot: Any,
) -> None:
    nine = at("2025-06-02 09:00")
    bot = make_bot(nine, rotation=DROPPING, session_memory=IDLE_HOUR)
    bot.append(nine, config_loaded(bot.settings.loaded))
    _turn(bot, nine, ALICE, 1, "alice-secret")
    bot.restart(nine + 60)  # a snapshot holding her turn, as a daemon's stop leaves one
    assert b"alice-secret" in _snapshots(bot.path)

    await bot.tick(nine + 101 * 60)
    assert b"alice-secret" not in _snapshots(bot.path)  # replaced at once, the bot still running
    bot.restart(nine + 102 * 60)

    assert len(_expiries(bot)) == 1
    # The answer stays in the log a while (the budget counts it), never in the context.
    [session] = bot.folded.view.sessions.sessions.values()
    assert (session.turns, session.system, session.last_activity) == ([], "", nine)
    refolded = fold(bot.records()).sessions.sessions["S1"]  # what it follows aside
    assert replace(session, texts=Texts()) == replace(refolded, texts=Texts())
    assert b"alice-secret" not in _snapshots(bot.path)


@pytest.mark.anyio
async def test_the_answers_left_go_by_the_sessions_last_activity(make_bot: Any) -> None:
    nine = at("2025-06-02 09:00")
    bot = make_bot(nine, rotation=DROPPING, session_memory=IDLE_HOUR)
    bot.append(nine, config_loaded(bot.settings.loaded))
    _turn(bot, nine, ALICE, 1, "alice-early")
    later = nine + 50 * 60  # the session's second exchange
    bot.append(
        later,
        MessageReceived(chat=ALICE, msg_id="M2", sender=ALICE, text="alice-late"),
        LlmRequested(
            chat=ALICE,
            call_id="C2",
            session_id="S1",
            trigger_ids=["M2"],
            model="m",
            params={},
            messages=[ChatTurn("user", "alice-late")],
            config_hash="h",
        ),
        LlmCompleted(chat=ALICE, call_id="C2", content="answer to alice-late"),
    )
    await bot.tick(later + 61 * 60)  # her words go, and her activity with them
    assert "alice-late" not in [
        t.content for s in bot.folded.view.sessions.sessions.values() for t in s.turns
    ]

    # Eight days after the first answer but not the second: the budget still counts that.
    await bot.tick(nine + 8 * DAY + 30 * 60)
    assert "answer to alice-late" in _texts(bot)

    await bot.tick(later + 8 * DAY + 61 * 60)
    texts = _texts(bot)
    assert "answer to alice-early" not in texts
    assert "answer to alice-late" not in texts


@pytest.mark.anyio
async def test_an_attachment_fetched_after_its_message_goes_with_it(make_bot: Any) -> None:
    nine = at("2025-06-02 09:00")
    bot = make_bot(nine, rotation=DROPPING, session_memory=IDLE_HOUR)
    bot.append(nine, config_loaded(bot.settings.loaded))
    stored = Media(kind="document", file_name="lab-result.pdf", sha256="ab" * 32)
    _turn(bot, nine, ALICE, 1, "alice-secret", fetched=stored)
    assert bot.folded.log.media() == {"ab" * 32}

    await bot.tick(nine + 101 * 60)

    [marker] = _expiries(bot)
    assert marker.by_type["MediaFetched"] == 1
    assert "lab-result.pdf" not in _texts(bot)
    assert bot.folded.log.media() == set()  # so the sweep deletes the file


FIXTURE = Path(__file__).parent / "fixtures" / "speech.ogg"


def _said(sha256: str, reply_id: str = "R1") -> SpeechSynthesized:
    return SpeechSynthesized(
        chat=ALICE,
        reply_id=reply_id,
        sha256=sha256,
        size=FIXTURE.stat().st_size,
        seconds=1.5,
        model="gpt-4o-mini-tts",
        voice="alloy",
        cost_usd=0.000375,
    )


async def _stored_note(bot: Bot) -> tuple[MediaStore, Path]:
    """A media store the bot's rotation sweeps, holding a voice reply's audio made an
    hour ago (older than the sweep's grace)."""
    store = MediaStore(bot.path / "media")
    bot.scheduler.media = store
    stored = await store.save_bytes(FIXTURE.read_bytes())
    path = store.path(stored.sha256)
    old = time.time() - HOUR
    os.utime(path, (old, old))
    return store, path


@pytest.mark.anyio
async def test_a_spoken_reply_and_its_audio_go_with_the_session(make_bot: Any) -> None:
    nine = at("2025-06-02 09:00")
    bot = make_bot(nine, rotation=DROPPING, session_memory=IDLE_HOUR)
    bot.append(nine, config_loaded(bot.settings.loaded))
    _, path = await _stored_note(bot)
    _turn(bot, nine, ALICE, 1, "alice-secret", spoken=[_said(path.name)])

    await bot.tick(nine + 101 * 60)
    [marker] = _expiries(bot)
    # Her words at once; the reply, its speech and its audio while the budget counts them.
    assert "SpeechSynthesized" not in marker.by_type
    assert bot.folded.log.media() == {path.name}
    assert path.exists()

    await bot.tick(nine + 8 * DAY + 2 * HOUR)

    assert [m.by_type.get("SpeechSynthesized") for m in _expiries(bot)] == [None, 1]
    assert not [r for r in bot.records() if isinstance(r.event, SpeechSynthesized)]
    assert bot.folded.log.media() == set()
    assert not path.exists()  # the bot's spoken words, deleted by the sweep


@pytest.mark.anyio
async def test_a_failure_to_speak_a_reply_goes_with_it(make_bot: Any) -> None:
    """A speech service may quote the words it refused in its error."""
    nine = at("2025-06-02 09:00")
    bot = make_bot(nine, rotation=DROPPING, session_memory=IDLE_HOUR)
    bot.append(nine, config_loaded(bot.settings.loaded))
    refused = "bad request (HTTP 400): cannot read 'answer to alice-secret' aloud"
    failures = [
        SpeechFailed(chat=ALICE, reply_id="R1", status=503, error="server error", final=False),
        SpeechFailed(chat=ALICE, reply_id="R1", status=400, error=refused, attempt=2, final=True),
    ]
    _turn(bot, nine, ALICE, 1, "alice-secret", spoken=list(failures))

    await bot.tick(nine + 8 * DAY + 2 * HOUR)

    assert sum(m.by_type.get("SpeechFailed", 0) for m in _expiries(bot)) == 2
    assert "alice-secret" not in _texts(bot)


@pytest.mark.anyio
async def test_a_voice_reply_is_followed_only_until_it_is_spoken_or_sent(make_bot: Any) -> None:
    """A reply_id held per voice reply in flight, no longer."""
    nine = at("2025-06-02 09:00")
    bot = make_bot(nine, rotation=DROPPING, session_memory=IDLE_HOUR)
    bot.append(nine, config_loaded(bot.settings.loaded))
    _turn(bot, nine, ALICE, 1, "spoken", spoken=[_said("c" * 64)])
    failed = SpeechFailed(chat=ALICE, reply_id="R2", error="x", final=True)
    _turn(bot, nine + 60, ALICE, 2, "not spoken", spoken=[failed])
    _turn(bot, nine + 120, ALICE, 3, "sent as text", spoken=[])  # sent, never spoken
    bot.folded.catch_up()

    assert bot.folded.view.sessions.speaking == {}


@pytest.mark.anyio
async def test_a_failed_calls_error_goes_with_its_request(make_bot: Any) -> None:
    """An API (or a proxy) may echo the request in its error: the words go at once."""
    nine = at("2025-06-02 09:00")
    bot = make_bot(nine, rotation=DROPPING, session_memory=IDLE_HOUR)
    bot.append(nine, config_loaded(bot.settings.loaded))
    _turn(bot, nine, ALICE, 1, "alice-secret")
    echoed = "bad request (HTTP 400): cannot answer 'alice-second-secret'"
    bot.append(
        nine + 60,
        MessageReceived(chat=ALICE, msg_id="M2", sender=ALICE, text="alice-second-secret"),
        LlmRequested(
            chat=ALICE,
            call_id="C2",
            session_id="S1",
            trigger_ids=["M2"],
            model="m",
            params={},
            messages=[ChatTurn("user", "alice-second-secret")],
            config_hash="h",
        ),
        LlmFailed(chat=ALICE, call_id="C2", status=500, error="server error", final=False),
        LlmFailed(chat=ALICE, call_id="C2", status=400, error=echoed, attempt=2, final=True),
    )

    await bot.tick(nine + 101 * 60)

    [marker] = _expiries(bot)
    assert marker.by_type["LlmFailed"] == 2
    assert "alice-second-secret" not in _texts(bot)
