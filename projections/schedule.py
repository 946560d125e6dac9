"""What the scheduler needs from the log: when each job last ran, and the day's replies.

The startup message counts as a job: a start soon after the last one says
nothing (``pipeline.daemon._timetable.startup_due``).

The times are log times (``Recorded.ts``), so "did this run already happen"
survives restarts. ``Compacted`` markers are never removed, so the last
rotation survives every later compaction; rotation keeps the newest vitality
and startup messages whatever the retention (``projections.retention``).
"""

from __future__ import annotations

from bisect import bisect_left

import msgspec

from events.model import Compacted, Recorded, ReplyPlanned
from events.units import DAY
from projections.base import Handlers, Projection, dispatcher


class State(msgspec.Struct, kw_only=True):
    last_vitality: float = 0.0  # ts of the newest vitality ReplyPlanned (0: none)
    last_rotation: float = 0.0  # ts of the newest Compacted(rotation) (0: none)
    last_startup: float = 0.0  # ts of the newest startup ReplyPlanned (0: none)
    # ts of replies planned during the day before the newest one, oldest first.
    replies: list[float] = []


def _planned(state: State, rec: Recorded, ev: ReplyPlanned) -> None:
    if ev.purpose == "vitality":
        state.last_vitality = rec.ts
    elif ev.purpose == "startup":
        state.last_startup = rec.ts
    elif ev.purpose == "reply":
        replies = state.replies
        replies.append(rec.ts)
        if replies[0] < rec.ts - DAY:
            del replies[: bisect_left(replies, rec.ts - DAY)]


def _compacted(state: State, rec: Recorded, ev: Compacted) -> None:
    if ev.reason == "rotation":
        state.last_rotation = rec.ts


def replies_since(state: State, since: float) -> int:
    """Replies planned at or after ``since`` (at most a day back)."""
    return len(state.replies) - bisect_left(state.replies, since)


_HANDLERS: Handlers[State] = {ReplyPlanned: _planned, Compacted: _compacted}
apply = dispatcher(_HANDLERS)
PROJECTION = Projection("schedule", State, apply, _HANDLERS)
