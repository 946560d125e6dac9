"""``rotation.drop_expired_sessions``: a rotation also removes the texts of ended sessions."""

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from events.backends import open_log
from events.model import (
    ChatTurn,
    Compacted,
    ConfigLoaded,
    DocumentRead,
    LlmCompleted,
    LlmRequested,
    MessageReceived,
    MessageSkipped,
    ReplyPlanned,
    ReplySent,
    SessionStarted,
)
from events.testing import FakeClock
from events.units import DAY, HOUR
from pipeline.daemon._folded_log import FoldedLog
from pipeline.daemon._settings import config_loaded
from tests import test_scheduler
from tests.test_scheduler import ALICE, Bot, at

make_bot = test_scheduler.make_bot  # the fixture: bots on a fake clock
BOB = "491702222222@s.whatsapp.net"
DROPPING = {"retention_days": 30, "interval_hours": 1, "drop_expired_sessions": True}
IDLE_HOUR = {"mode": "idle", "ttl_minutes": 60}


def _turn(bot: Bot, when: float, chat: str, n: int, words: str) -> None:
    """One exchange of session ``S{n}`` in ``chat``: message (a document), request,
    answer, reply."""
    msg, call, session = f"M{n}", f"C{n}", f"S{n}"
    bot.append(
        when,
        MessageReceived(chat=chat, msg_id=msg, sender=chat, text=words),
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
        ),
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
