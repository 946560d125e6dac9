"""``/status``: the bot's state in a few lines for the owner's phone, from the view alone.

The connection, a restriction of the account, what waits (messages to decide,
messages to send, paused chats, takeovers), today's replies and spend (the day as the
daily budget counts it, in ``vitality.timezone``), and the last error. It
reads only projections the daemon keeps current, so asking costs no read of
the log and no LLM call.
"""

from __future__ import annotations

import math

from pipeline.config import AppConfig, clock, counted
from pipeline.daemon import _outreach as outreach
from projections import account, budget, failures, outbox, pauses, schedule, takeover
from projections.fold import States

_ERROR_CHARS = 200  # an error is one line; a long one is cut for the phone


def report(view: States, config: AppConfig, now: float, asking: str = "") -> tuple[str, str | None]:
    """The status text, and the chat whose words it may quote (the last error's);
    ``asking``: the command's own message, not counted as waiting."""
    last = failures.last(view.failures)
    lines = [
        f"Status at {clock(now, now, config)}",
        connection_line(view, config, now),
        restriction_line(view, config, now),
        queue_line(view, asking),
        *paused_lines(view, config, now),
        today_line(view, config, now),
    ]
    if last is None:
        lines.append("Last error: none")
    else:
        error = last.error if len(last.error) <= _ERROR_CHARS else last.error[:_ERROR_CHARS] + "…"
        where = f" in {display(config, last.chat)}" if last.chat else ""
        lines.append(f"Last error: {clock(last.ts, now, config)} {last.what}{where}: {error}")
    return "\n".join(lines), (last.chat or None) if last is not None else None


def connection_line(view: States, config: AppConfig, now: float) -> str:
    state = view.connection.state
    if state is None:
        return "Connection: no report (up, as far as the log knows)"
    since = view.connection.since
    when = f" since {clock(since[1], now, config)}" if since is not None else ""
    detail = f" ({view.connection.detail})" if view.connection.detail else ""
    return f"Connection: {state}{when}{detail}"


def restriction_line(view: States, config: AppConfig, now: float) -> str:
    strike = account.newest(view.account)
    if strike is None:
        return "Restriction: none"
    code = f" (error {strike.code})" if strike.code is not None else ""
    held = outreach.hold_until(view, now)
    if held is None:
        return f"Restriction{code}: sends to others go one at a time until one goes through"
    return f"Restriction{code}: sends to others wait until {clock(held, now, config)}"


def queue_line(view: States, asking: str = "") -> str:
    waiting = chats = 0
    for items in view.queue.chats.values():
        here = sum(1 for msg_id in items if msg_id != asking)
        waiting += here
        chats += here > 0
    owed = len(outbox.unsent(view.outbox))
    return (
        f"Queue: {counted(waiting, 'message')} to decide in {counted(chats, 'chat')},"
        f" {owed} to send"
    )


def paused_lines(view: States, config: AppConfig, now: float) -> list[str]:
    paused = pauses.paused_chats(view.pauses, now)
    return [
        f"Paused: {display(config, chat)} "
        + ("until /resume" if math.isinf(end) else f"until {clock(end, now, config)}")
        for chat, end in paused.items()
    ] + [
        f"Paused: {display(config, chat)} until {clock(end, now, config)} (you wrote there)"
        for chat, end in taken_over(view, config, now).items()
    ]


def taken_over(view: States, config: AppConfig, now: float) -> dict[str, float]:
    """The chats where the owner's own message silenced the bot (``takeover``), and
    until when: ``/status`` lists them and ``/resume`` ends them early."""
    if not config.takeover.enabled:
        return {}
    return takeover.in_force(view.takeover, now, config.takeover.minutes)


def today_line(view: States, config: AppConfig, now: float) -> str:
    midnight = config.local_midnight(now)
    replies = schedule.replies_since(view.schedule, midnight)
    spent = budget.spent_since(view.budget, midnight)
    limit = config.limits.daily_budget_usd
    return (
        f"Today: {replies} repl{'y' if replies == 1 else 'ies'}, ${spent:.4f} spent of ${limit:.2f}"
    )


def display(config: AppConfig, chat: str) -> str:
    """A chat as the owner knows it: the entity's name, else its JID."""
    entity = config.find_entity(chat)
    if entity is not None and chat == config.owner_jid:
        return "your own chat"
    return entity.name if entity is not None and entity.name else chat
