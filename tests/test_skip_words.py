"""Why a message was not answered, in words (issue 22 item 13): one function, pure."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pipeline.config import (
    AppConfig,
    Entity,
    GroupEntity,
    Skip,
    Trigger,
    config_from_dict,
    skip_words,
    trigger_words,
)

BERLIN = ZoneInfo("Europe/Berlin")
# 2026-11-25 14:00 in Berlin (CET).
AT = datetime(2026, 11, 25, 14, 0, tzinfo=BERLIN).timestamp()
GROUP = "120363000000000000@g.us"


def config(**sections: Any) -> AppConfig:
    return config_from_dict(
        {
            "whatsapp": {"phone_number": "491700000000"},
            "monitored_entities": [
                {"type": "user", "phone": "491701111111", "name": "Alice"},
                {"type": "group", "jid": GROUP, "name": "Family", "trigger": {"keywords": ["bot"]}},
                {"type": "group", "jid": "120363000000000001@g.us", "name": "Club"},
            ],
            "vitality": {"timezone": "Europe/Berlin"},
            "takeover": {"minutes": 30},
            **sections,
        }
    )


def entity(cfg: AppConfig, name: str) -> Entity:
    return next(e for e in cfg.monitored_entities if e.name == name)


def words(reason: str, name: str = "Alice", cfg: AppConfig | None = None, **facts: Any) -> str:
    cfg = cfg or config()
    return skip_words(Skip(reason=reason, at=AT, **facts), cfg, entity(cfg, name))


def test_a_takeover_says_until_when_the_bot_is_silent() -> None:
    assert words("takeover") == (
        "you wrote here yourself: the bot stays silent in this chat until 14:30 CET"
    )


def test_a_pause_says_when_the_owner_took_over_and_until_when() -> None:
    assert words("paused", took_over_at=AT - 600) == (
        "you took over this chat at 13:50 CET: silent until 14:20 CET"
    )
    # A takeover that lasts into another day names the date.
    long = config(takeover={"minutes": 720})
    assert words("paused", cfg=long, took_over_at=AT) == (
        "you took over this chat at 14:00 CET: silent until 2026-11-26 02:00 CET"
    )
    assert (
        words("paused") == "you took over this chat: the bot stays silent for takeover.minutes (30)"
    )


def test_a_message_that_waited_out_the_owners_pause_says_so() -> None:
    assert words("paused", owner_paused=True, took_over_at=AT - 600) == (
        "you paused this chat (/pause): it waited, and was older than "
        "polling.catch_up_minutes (30 min) before it could be answered"
    )


def test_not_triggered_names_the_keywords_none_of_which_matched() -> None:
    assert words("not_triggered", "Family") == (
        'it does not mention you or quote the bot, and no keyword matched ("bot")'
    )
    keyword_only = config(
        monitored_entities=[
            {
                "type": "group",
                "jid": GROUP,
                "name": "Family",
                "trigger": {"mode": "keyword", "keywords": ["bot", "hey bot"]},
            }
        ]
    )
    assert words("not_triggered", "Family", keyword_only) == 'no keyword matched ("bot", "hey bot")'
    assert words("not_triggered", "Club") == (
        "it does not mention you or quote the bot, and no keywords are set"
    )
    assert words("not_triggered", "Family", media="voice") == (
        'it does not mention you or quote the bot, and no keyword matched ("bot"); '
        "a voice note has no caption to trigger on"
    )
    listening = config(
        groups={"listen_after_mention_seconds": 90, "reply_to_bot_is_mention": False}
    )
    assert words("not_triggered", "Club", listening) == (
        "it does not mention you or follow the bot's answer to its sender within 90 s, "
        "and no keywords are set"
    )


def test_stale_says_how_late_against_the_setting() -> None:
    assert words("stale", sent_at=AT - 45 * 60) == (
        "sent 45 min before the bot read it, over polling.catch_up_minutes (30 min)"
    )
    assert words("stale", sent_at=AT - 26 * 3600) == (
        "sent 26.0 h before the bot read it, over polling.catch_up_minutes (30 min)"
    )


@pytest.mark.parametrize(
    ("reason", "facts", "expected"),
    [
        ("empty", {}, "nothing to answer: no text and nothing attached"),
        ("empty", {"media": "sticker"}, "nothing to answer: a sticker"),
        ("echo", {}, "the bot's own message, seen coming back"),
        (
            "rate_limited",
            {},
            "30 replies in this chat in the last hour reached limits.replies_per_chat_per_hour",
        ),
        ("budget", {}, "today's spend reached limits.daily_budget_usd ($5.00)"),
        ("revoked", {}, "deleted by the sender before the answer"),
        ("something_new", {}, "skipped (something_new)"),
    ],
)
def test_every_other_reason_in_words(reason: str, facts: dict[str, Any], expected: str) -> None:
    assert words(reason, **facts) == expected


def test_the_words_never_carry_the_message() -> None:
    """Only settings, keywords and times: nothing the Skip could hold of the text."""
    assert set(Skip.__struct_fields__) == {
        "reason",
        "at",
        "sent_at",
        "took_over_at",
        "media",
        "owner_paused",
    }


def test_which_keyword_triggered_a_group_message() -> None:
    trigger = Trigger(keywords=("bot", "wabot"))
    cfg = config()
    group = GroupEntity(jid=GROUP, trigger=trigger)
    assert trigger_words(cfg, group, "Hey BOT, dinner?") == 'the keyword "bot"'
    assert trigger_words(cfg, group, "@491700000000 dinner?") == (
        "it mentions you or it quotes the bot"
    )
    always = GroupEntity(jid=GROUP, trigger=Trigger(mode="always"))
    assert trigger_words(cfg, always, "dinner?") == (
        'the group answers every message (trigger "always")'
    )
    assert trigger.matched("robot wars") is None  # a word of its own, not inside another
