"""Reminders pending: what the scheduler must send, and when the next one falls due.

A reminder is pending from its ``ReminderSet`` until it is cancelled
(``ReminderCancelled``) or fired (``ReminderFired``, in the commit of the
message it plans). ``due`` keeps the pending ones ordered by time, so the
scheduler finds the next one, and what is due now, without looking at the
others: a tick with 10,000 pending costs the same as with one.

A rotation keeps the ``ReminderSet`` of every pending reminder (``kept``), so
none is lost however far ahead it is; ``forget --chat`` removes the chat's, and
a ``Compacted`` that removed a ``ReminderSet`` drops its reminder, as a fold of
what is left would.
"""

from __future__ import annotations

from bisect import bisect_left, insort

import msgspec

from events.model import Compacted, Recorded, ReminderCancelled, ReminderFired, ReminderSet
from projections.base import Handlers, Projection, removal


class Reminder(msgspec.Struct, kw_only=True, gc=False):
    reminder_id: str
    chat: str
    at: float  # when it is due (unix seconds)
    text: str
    seq: int  # its ReminderSet's
    ts: float  # and that event's log time


class State(msgspec.Struct, kw_only=True):
    pending: dict[str, Reminder] = {}  # reminder_id -> reminder, in log order
    due: list[tuple[float, str]] = []  # (at, reminder_id) of each pending one, sorted


def _set(state: State, rec: Recorded, ev: ReminderSet) -> None:
    if ev.reminder_id in state.pending:
        return
    state.pending[ev.reminder_id] = Reminder(
        reminder_id=ev.reminder_id, chat=ev.chat, at=ev.at, text=ev.text, seq=rec.seq, ts=rec.ts
    )
    insort(state.due, (ev.at, ev.reminder_id))


def _drop(state: State, reminder_id: str) -> None:
    reminder = state.pending.pop(reminder_id, None)
    if reminder is None:
        return
    key = (reminder.at, reminder_id)
    at = bisect_left(state.due, key)
    if at < len(state.due) and state.due[at] == key:
        del state.due[at]


def _cancelled(state: State, rec: Recorded, ev: ReminderCancelled) -> None:
    _drop(state, ev.reminder_id)


def _fired(state: State, rec: Recorded, ev: ReminderFired) -> None:
    _drop(state, ev.reminder_id)


def _compacted(state: State, rec: Recorded, ev: Compacted) -> None:
    gone = removal(ev)
    if gone is None:
        return
    for reminder in list(state.pending.values()):
        if gone.gone(reminder.seq, reminder.ts, reminder.chat):
            _drop(state, reminder.reminder_id)


def next_due(state: State) -> float | None:
    """When the earliest pending reminder is due; None: none is pending."""
    return state.due[0][0] if state.due else None


def due_by(state: State, now: float, limit: int | None = None) -> list[Reminder]:
    """The pending reminders due at or before ``now``, earliest first (at most ``limit``)."""
    found: list[Reminder] = []
    for at, reminder_id in state.due:
        if at > now or len(found) == limit:
            break
        found.append(state.pending[reminder_id])
    return found


def of_chat(state: State, chats: frozenset[str] | set[str]) -> list[Reminder]:
    """The pending reminders of ``chats`` (a person's ids), earliest first."""
    return sorted(
        (r for r in state.pending.values() if r.chat in chats), key=lambda r: (r.at, r.reminder_id)
    )


def every(state: State) -> list[Reminder]:
    """Every pending reminder, earliest first."""
    return [state.pending[reminder_id] for _, reminder_id in state.due]


def kept(state: State) -> frozenset[int]:
    """The ``ReminderSet`` events a rotation must keep: the pending reminders'."""
    return frozenset(r.seq for r in state.pending.values())


_HANDLERS: Handlers[State] = {
    ReminderSet: _set,
    ReminderCancelled: _cancelled,
    ReminderFired: _fired,
    Compacted: _compacted,
}
PROJECTION = Projection.of("reminders", State, _HANDLERS)
apply = PROJECTION.apply
