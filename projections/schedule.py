"""What the scheduler needs from the log: when each job last ran, and the day's replies
(for the check-in's last 24 h and /status's local day, 25 h when clocks go back).

The startup message counts as a job: a start soon after the last one says
nothing (``pipeline.daemon._timetable.startup_due``).

The times are log times (``Recorded.ts``), so "did this run already happen"
survives restarts. ``Compacted`` markers are never removed, so the last
rotation survives every later compaction; rotation keeps the newest vitality
and startup messages whatever the retention (``projections.retention``).

A ``Compacted`` that removed the latest vitality or startup message resets
that time to none, as a fold of what is left would (unless a rotation kept an
older one); the day's replies that went are dropped.
"""

from __future__ import annotations

import sys
from bisect import bisect_left

import msgspec

from events.model import Compacted, Recorded, ReplyPlanned
from events.units import HOUR
from projections.base import Handlers, Origin, Projection, origin, removal

# How far back replies are kept: the check-in counts the last 24 h, /status the local
# day so far, which is 25 h long on the day clocks go back. An hour to spare.
KEEP = 26 * HOUR


class State(msgspec.Struct, kw_only=True):
    last_vitality: float = 0.0  # ts of the newest vitality ReplyPlanned (0: none)
    last_rotation: float = 0.0  # ts of the newest Compacted(rotation) (0: none)
    last_startup: float = 0.0  # ts of the newest startup ReplyPlanned (0: none)
    # ts of replies (answers: of a split one, its first part) planned during the
    # ``KEEP`` before the newest one, oldest first.
    replies: list[float] = []
    # The seq and chat of each of ``replies`` (parallel lists, the chats interned:
    # a day of replies is many, and a tuple each would double their cost).
    reply_seqs: list[int] = []
    reply_chats: list[str] = []
    vitality_from: Origin | None = None
    startup_from: Origin | None = None


def _planned(state: State, rec: Recorded, ev: ReplyPlanned) -> None:
    if ev.purpose == "vitality":
        state.last_vitality = rec.ts
        state.vitality_from = origin(rec)
    elif ev.purpose == "startup":
        state.last_startup = rec.ts
        state.startup_from = origin(rec)
    elif ev.purpose == "reply" and ev.opens_answer:
        # An answer split into parts is one reply: its first part counts.
        replies = state.replies
        replies.append(rec.ts)
        state.reply_seqs.append(rec.seq)
        state.reply_chats.append(sys.intern(ev.chat))
        if replies[0] < rec.ts - KEEP:
            cut = bisect_left(replies, rec.ts - KEEP)
            del replies[:cut], state.reply_seqs[:cut], state.reply_chats[:cut]


def _compacted(state: State, rec: Recorded, ev: Compacted) -> None:
    if ev.reason == "rotation":
        state.last_rotation = rec.ts
    gone = removal(ev)
    if gone is None:
        return
    if state.vitality_from is not None and gone.gone(*state.vitality_from):
        state.last_vitality, state.vitality_from = 0.0, None
    if state.startup_from is not None and gone.gone(*state.startup_from):
        state.last_startup, state.startup_from = 0.0, None
    left = [
        (ts, seq, chat)
        for ts, seq, chat in zip(state.replies, state.reply_seqs, state.reply_chats, strict=True)
        if not gone.gone(seq, ts, chat)
    ]
    state.replies = [ts for ts, _, _ in left]
    state.reply_seqs = [seq for _, seq, _ in left]
    state.reply_chats = [chat for _, _, chat in left]


def replies_since(state: State, since: float) -> int:
    """Replies planned at or after ``since`` (at most ``KEEP`` back)."""
    return len(state.replies) - bisect_left(state.replies, since)


_HANDLERS: Handlers[State] = {ReplyPlanned: _planned, Compacted: _compacted}
PROJECTION = Projection.of("schedule", State, _HANDLERS)
apply = PROJECTION.apply
