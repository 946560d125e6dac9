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

The scheduler asks this only when the earliest pending reminder is due
(``projections.reminders.next_due``); the rule reads the due ones only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from events.model import AnyEvent, ReminderCancelled, ReminderFired, ReplyPlanned
from pipeline.config import AppConfig
from pipeline.daemon._replies import Ids
from projections import reminders

# At most this many reminders are planned in one commit; the rest in the next pass.
BATCH = 200


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
        text = _missed(reminder, config) if lost else reminder.text
        planned = ReplyPlanned(
            chat=reminder.chat,
            reply_id=ids.new_id(),
            purpose="reminder",
            text=text,
            wa_id=ids.new_wa_id(),
        )
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


def _dropped(reminder: reminders.Reminder) -> ReminderCancelled:
    return ReminderCancelled(
        chat=reminder.chat, reminder_id=reminder.reminder_id, reason="not_monitored"
    )


def _missed(reminder: reminders.Reminder, config: AppConfig) -> str:
    """The one line a chat gets for a reminder missed while the bot was down."""
    when_due = datetime.fromtimestamp(reminder.at, config.vitality.zone).strftime(
        "%Y-%m-%d %H:%M %Z"
    )
    words = " ".join(reminder.text.split())
    return f"Missed reminder (due {when_due}, while I was offline): {words}"
