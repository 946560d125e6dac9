"""Which reminders fire now, as a pure rule over the pending ones, the config and now.

A due reminder becomes a ``ReplyPlanned`` (purpose ``reminder``) to its own
chat and a ``ReminderFired`` naming it, one commit: the outbox then sends it
exactly once, like any reply (the pace and a restriction's hold apply), and
the reminder is no longer pending, so no restart plans it again. One that
came due while the bot was down is sent at start if it is at most
``polling.catch_up_minutes`` late; later than that it is ``missed``, and the
chat gets one line saying so instead (a reminder for a meeting that is over
is noise, silence would be worse). One whose chat is no longer monitored (the
owner took it out of app.json) is cancelled, never sent: the bot does not
write where it was told to stay out.

The same lateness holds once planned: a reminder's message still unsent more
than ``polling.catch_up_minutes`` after it was due (WhatsApp disconnected, the
account held) is never sent as if on time. The sender fails it as stale and
plans, in the same commit, the line a missed one gets (``overdue``,
``missed_late``); that line is never stale itself, so the reminder is not lost.
It says why it is late: the bot offline, or WhatsApp holding its messages
(a restriction, ``projections.account``): the bot was up then, and saying
"offline" would be untrue.

The scheduler asks this only when the earliest pending reminder is due
(``projections.reminders.next_due``); the rule reads the due ones only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from events.model import (
    AnyEvent,
    ReminderCancelled,
    ReminderFired,
    ReplyFailed,
    ReplyPlanned,
)
from pipeline.config import AppConfig
from pipeline.daemon._replies import Ids
from projections import account, outbox, reminders

# At most this many reminders are planned in one commit; the rest in the next pass.
BATCH = 200
# Why a reminder went out late: the bot was not running (or not connected), or a
# restriction of the account held its messages.
Cause = Literal["offline", "restricted"]
_WHILE: dict[Cause, str] = {
    "offline": "while I was offline",
    "restricted": "while WhatsApp held my messages: the account was restricted",
}


@dataclass(frozen=True, slots=True)
class Fired:
    """What one pass records (``ReminderFired`` then its ``ReplyPlanned``, per reminder),
    and how many fired, were missed, and whether more are due."""

    events: list[AnyEvent]
    fired: int = 0
    missed: int = 0
    dropped: int = 0  # cancelled: their chats are no longer monitored
    more: bool = False  # more were due than one batch holds: run again at once


def due(state: reminders.State, config: AppConfig, now: float, ids: Ids) -> Fired:
    """The events that fire (or record as missed) every reminder due at ``now``."""
    found = reminders.due_by(state, now, BATCH + 1)
    window = config.polling.catch_up_minutes * 60
    events: list[AnyEvent] = []
    missed = dropped = 0
    for reminder in found[:BATCH]:
        if config.find_entity(reminder.chat) is None:  # messages are filed by entity
            events.append(_dropped(reminder))
            dropped += 1
            continue
        late = max(0.0, now - reminder.at)
        lost = late > window
        missed += lost
        text = missed_words(reminder.text, reminder.at, config) if lost else reminder.text
        planned = _reminder_line(reminder.chat, text, ids)
        fired = ReminderFired(
            chat=reminder.chat,
            reminder_id=reminder.reminder_id,
            reply_id=planned.reply_id,
            missed=lost,
            late=round(late, 3),
        )
        events += [fired, planned]
    count = min(len(found), BATCH) - dropped
    return Fired(
        events, fired=count - missed, missed=missed, dropped=dropped, more=len(found) > BATCH
    )


def _reminder_line(chat: str, text: str, ids: Ids) -> ReplyPlanned:
    return ReplyPlanned(
        chat=chat, reply_id=ids.new_id(), purpose="reminder", text=text, wa_id=ids.new_wa_id()
    )


def _dropped(reminder: reminders.Reminder) -> ReminderCancelled:
    return ReminderCancelled(
        chat=reminder.chat, reminder_id=reminder.reminder_id, reason="not_monitored"
    )


def missed_words(text: str, at: float, config: AppConfig, cause: Cause = "offline") -> str:
    """The one line a chat gets for a reminder due at ``at`` and missed while the bot
    was down or could not send (``cause``)."""
    when_due = datetime.fromtimestamp(at, config.vitality.zone).strftime("%Y-%m-%d %H:%M %Z")
    words = " ".join(text.split())
    return f"Missed reminder (due {when_due}, {_WHILE[cause]}): {words}"


def late_for(entry: outbox.Entry, config: AppConfig, held: account.State) -> Cause:
    """Why a reminder's message is still unsent past ``overdue``: a restriction that held
    sends while it was due, else the bot or its connection being down."""
    assert entry.due is not None
    if account.restricted_between(held, entry.due, overdue(entry, config)):
        return "restricted"
    return "offline"


def overdue(entry: outbox.Entry, config: AppConfig) -> float:
    """When a reminder's unsent message is too late to go as it was planned (inf: never,
    not a reminder's, or one already worded as missed)."""
    if entry.due is None:
        return math.inf
    return entry.due + config.polling.catch_up_minutes * 60


def missed_late(
    entry: outbox.Entry, config: AppConfig, ids: Ids, cause: Cause = "offline"
) -> list[AnyEvent]:
    """A reminder's message that waited past ``overdue`` (for ``cause``): failed as
    stale, and the line a missed reminder gets planned in its place, unless its chat
    is no longer monitored (as ``due`` cancels those: nothing new is written where the
    bot was told to stay out)."""
    planned, due = entry.event, entry.due
    assert due is not None  # only an overdue reminder's message comes here
    minutes = config.polling.catch_up_minutes
    failed = ReplyFailed(
        chat=planned.chat,
        reply_id=planned.reply_id,
        error=f"stale: not sent within polling.catch_up_minutes ({minutes:g}) of being due;"
        " sent as missed",
        final=True,
        attempt=entry.attempts + 1,
    )
    if config.find_entity(planned.chat) is None:
        return [failed]
    line = missed_words(planned.text, due, config, cause)
    return [failed, _reminder_line(planned.chat, line, ids)]
