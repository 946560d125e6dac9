"""Replies planned but not yet confirmed sent: what the sender must (re)try.

A part to be spoken carries its speech once made (``SpeechSynthesized``), or
``unspoken`` once speaking it failed for good: then its text goes instead.
A reminder's message carries when the reminder was due (from the
``ReminderFired`` recorded just before it, in its commit), so the sender can
tell one that waited too long (``_reminding.overdue``); a missed one's does not.

A ``Compacted`` drops the entries whose plan went.
"""

from __future__ import annotations

import msgspec

from events.model import (
    Compacted,
    Recorded,
    ReminderFired,
    ReplyFailed,
    ReplyPlanned,
    ReplySent,
    SpeechFailed,
    SpeechSynthesized,
)
from projections.base import Handlers, Projection, removal


class Entry(msgspec.Struct, kw_only=True, gc=False):
    seq: int
    ts: float
    event: ReplyPlanned
    attempts: int = 0  # retryable failures so far
    speech: SpeechSynthesized | None = None
    unspoken: bool = False  # speaking failed for good: the text goes instead
    due: float | None = None  # a reminder's (not missed): when it was due

    @property
    def speech_due(self) -> bool:
        """A part to be spoken whose speech is neither made nor given up."""
        return self.event.speech is not None and self.speech is None and not self.unspoken


class State(msgspec.Struct, kw_only=True):
    # reply_id -> entry, in insertion (= log) order
    planned: dict[str, Entry] = {}
    # reply_id -> when its reminder was due, from its ReminderFired to its ReplyPlanned
    firing: dict[str, float] = {}


def _fired(state: State, rec: Recorded, ev: ReminderFired) -> None:
    if not ev.missed:  # a missed one's message already says so
        state.firing[ev.reply_id] = rec.ts - ev.late


def _planned(state: State, rec: Recorded, ev: ReplyPlanned) -> None:
    due = state.firing.pop(ev.reply_id, None) if state.firing else None
    if ev.reply_id not in state.planned:
        state.planned[ev.reply_id] = Entry(seq=rec.seq, ts=rec.ts, event=ev, due=due)


def _sent(state: State, rec: Recorded, ev: ReplySent) -> None:
    state.planned.pop(ev.reply_id, None)


def _failed(state: State, rec: Recorded, ev: ReplyFailed) -> None:
    if ev.final:
        state.planned.pop(ev.reply_id, None)
        return
    entry = state.planned.get(ev.reply_id)
    if entry is not None:
        entry.attempts += 1


def _spoken(state: State, rec: Recorded, ev: SpeechSynthesized) -> None:
    entry = state.planned.get(ev.reply_id)
    if entry is not None:
        entry.speech = ev


def _not_spoken(state: State, rec: Recorded, ev: SpeechFailed) -> None:
    entry = state.planned.get(ev.reply_id)
    if entry is not None and ev.final:
        entry.unspoken = True


def _compacted(state: State, rec: Recorded, ev: Compacted) -> None:
    state.firing = {}  # a ReminderFired and its message are one commit: none is waiting
    gone = removal(ev)
    if gone is not None:
        state.planned = {
            reply_id: entry
            for reply_id, entry in state.planned.items()
            if not gone.gone(entry.seq, entry.ts, entry.event.chat)
        }


def unsent(state: State) -> list[Entry]:
    """Planned replies with no confirmation or final failure, in log order."""
    return list(state.planned.values())


_HANDLERS: Handlers[State] = {
    ReminderFired: _fired,
    ReplyPlanned: _planned,
    ReplySent: _sent,
    ReplyFailed: _failed,
    SpeechSynthesized: _spoken,
    SpeechFailed: _not_spoken,
    Compacted: _compacted,
}
PROJECTION = Projection.of("outbox", State, _HANDLERS)
apply = PROJECTION.apply
