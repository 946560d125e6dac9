"""Why a message was not answered, in words, from the skip and the config in force.

One function for the daemon's INFO line and the console's turn, so both say
the same. The words name settings, keywords and times, never the message's
text: a log line may not carry what a chat said.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from pipeline.config._app import AppConfig
from pipeline.config._entities import Entity, GroupEntity


class Skip(msgspec.Struct, frozen=True, kw_only=True):
    """What is known of one skipped message besides the config."""

    reason: str  # MessageSkipped.reason
    at: float  # when it was decided
    sent_at: float | None = None  # when the sender sent it (for ``stale``)
    took_over_at: float | None = None  # the owner's last message here (for ``paused``)
    media: str | None = None  # the kind of its attachment, if any
    owner_paused: bool = False  # ``paused`` by the owner's /pause, not by a takeover


def skip_words(skip: Skip, config: AppConfig, entity: Entity | None) -> str:
    """One sentence saying why ``skip`` was not answered, for a log line or a page."""
    reason = skip.reason
    if reason == "paused" and skip.owner_paused:
        minutes = config.polling.catch_up_minutes
        return (
            "you paused this chat (/pause): it waited, and was older than "
            f"polling.catch_up_minutes ({minutes:g} min) before it could be answered"
        )
    if reason in ("takeover", "paused"):
        return _taken_over(skip, config)
    if reason == "not_triggered" and isinstance(entity, GroupEntity):
        return _not_triggered(config, entity, skip.media)
    if reason == "stale":
        return _stale(skip, config)
    if reason == "empty":
        what = "a sticker" if skip.media == "sticker" else "no text and nothing attached"
        return f"nothing to answer: {what}"
    limits = config.limits
    fixed = {
        "echo": "the bot's own message, seen coming back",
        "own_message": "you wrote it yourself (takeover is off: your messages are not answered)",
        "rate_limited": f"{limits.replies_per_chat_per_hour} replies in this chat in the last "
        "hour reached limits.replies_per_chat_per_hour",
        "budget": f"today's spend reached limits.daily_budget_usd (${limits.daily_budget_usd:.2f})",
        "revoked": "deleted by the sender before the answer",
        "not_monitored": "the chat is not monitored (any more)",
    }
    return fixed.get(reason, f"skipped ({reason})")


def trigger_words(config: AppConfig, group: GroupEntity, text: str) -> str:
    """Why a group message was for the bot: the keyword it holds, else what else may
    call it there (a mention, a quote of the bot, a follow-up within the window)."""
    trigger = group.trigger
    if trigger.mode == "always":
        return 'the group answers every message (trigger "always")'
    word = trigger.matched(text)
    if word is not None:
        return f'the keyword "{word}"'
    return " or ".join(said for said, _ in _callers(config, group))


def _callers(config: AppConfig, group: GroupEntity) -> list[tuple[str, str]]:
    """What, besides a keyword, triggers ``group``: (it does, it does not) in words."""
    settings = config.group_settings(group)
    found = []
    if group.trigger.mode == "mention":
        found.append(("it mentions you", "mention you"))
        if settings.reply_to_bot_is_mention:
            found.append(("it quotes the bot", "quote the bot"))
    if window := settings.listen_after_mention_seconds:
        within = f"the bot's answer to its sender within {window:g} s"
        found.append((f"it follows {within}", f"follow {within}"))
    return found


def _taken_over(skip: Skip, config: AppConfig) -> str:
    minutes = config.takeover.minutes
    since = skip.at if skip.reason == "takeover" else skip.took_over_at
    if since is None:
        return f"you took over this chat: the bot stays silent for takeover.minutes ({minutes:g})"
    until = clock(since + minutes * 60, skip.at, config)
    if skip.reason == "takeover":
        return f"you wrote here yourself: the bot stays silent in this chat until {until}"
    return f"you took over this chat at {clock(since, skip.at, config)}: silent until {until}"


def _not_triggered(config: AppConfig, group: GroupEntity, media: str | None) -> str:
    keywords = ", ".join(f'"{k}"' for k in group.trigger.keywords)
    matched = f"no keyword matched ({keywords})" if keywords else "no keywords are set"
    if callers := [not_ for _, not_ in _callers(config, group)]:
        matched = f"it does not {' or '.join(callers)}, and {matched}"
    if media in ("voice", "audio"):
        matched += "; a voice note has no caption to trigger on"
    return matched


def _stale(skip: Skip, config: AppConfig) -> str:
    limit = config.polling.catch_up_minutes
    if skip.sent_at is None:
        return f"older than polling.catch_up_minutes ({limit:g} min) when the bot read it"
    late = max(skip.at - skip.sent_at, 0.0) / 60
    age = f"{late:.0f} min" if late < 120 else f"{late / 60:.1f} h"
    return f"sent {age} before the bot read it, over polling.catch_up_minutes ({limit:g} min)"


def clock(ts: float, at: float, config: AppConfig) -> str:
    """``ts`` in the owner's zone: the time, and the date when it is not ``at``'s day."""
    zone = config.vitality.zone
    moment = datetime.fromtimestamp(ts, zone)
    same_day = moment.date() == datetime.fromtimestamp(at, zone).date()
    return moment.strftime("%H:%M %Z" if same_day else "%Y-%m-%d %H:%M %Z")


def counted(n: int, noun: str) -> str:
    """``n`` and ``noun``, in the plural unless ``n`` is 1 ("1 chat", "2 chats")."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
