"""What the limits count: replies per chat in the last hour, spend over recent days
(LLM calls and transcriptions).

Old entries are pruned once per hour of log time (a sweep), so each list stays
bounded by the activity of one window plus one hour; queries filter by ``now``.
"""

from __future__ import annotations

from bisect import bisect_left

import msgspec

from events.model import LlmCompleted, MediaTranscribed, Recorded, ReplyPlanned
from events.units import HOUR
from projections.base import Handlers, Projection, dispatcher

SPEND_WINDOW = 8 * 24 * HOUR  # a day's budget in any time zone, with room to spare


class State(msgspec.Struct, kw_only=True):
    newest: float = 0.0  # ts of the newest event seen
    swept_at: float = 0.0
    replies: dict[str, list[float]] = {}  # chat -> ts of planned replies
    # Costs as parallel lists sorted by ts (log order), so a window is one bisect.
    cost_ts: list[float] = []
    cost_usd: list[float] = []


def _seen(state: State, ts: float) -> None:
    if ts <= state.newest:
        return
    state.newest = ts
    if ts - state.swept_at >= HOUR:
        _sweep(state)


def _sweep(state: State) -> None:
    state.swept_at = state.newest
    hour_ago = state.newest - HOUR
    for chat in list(state.replies):
        recent = [t for t in state.replies[chat] if t > hour_ago]
        if recent:
            state.replies[chat] = recent
        else:
            del state.replies[chat]
    cut = bisect_left(state.cost_ts, state.newest - SPEND_WINDOW)
    if cut:
        del state.cost_ts[:cut]
        del state.cost_usd[:cut]


def _planned(state: State, rec: Recorded, ev: ReplyPlanned) -> None:
    _seen(state, rec.ts)
    if ev.purpose == "reply":
        times = state.replies.get(ev.chat)
        if times is None:
            state.replies[ev.chat] = [rec.ts]
        else:
            times.append(rec.ts)


def _completed(state: State, rec: Recorded, ev: LlmCompleted) -> None:
    _spent(state, rec, ev.usage.cost_usd)


def _transcribed(state: State, rec: Recorded, ev: MediaTranscribed) -> None:
    _spent(state, rec, ev.cost_usd)


def _spent(state: State, rec: Recorded, cost: float | None) -> None:
    _seen(state, rec.ts)
    if cost:  # None (unknown) and 0 add nothing
        state.cost_ts.append(rec.ts)
        state.cost_usd.append(cost)


def replies_last_hour(state: State, chat: str, now: float) -> int:
    """Replies planned in ``chat`` during the hour before ``now``."""
    hour_ago = now - HOUR
    return sum(1 for t in state.replies.get(chat, ()) if t > hour_ago)


def spent_since(state: State, since: float) -> float:
    """Cost in USD of calls and transcriptions done at or after ``since`` (at most 8 days back)."""
    return sum(state.cost_usd[bisect_left(state.cost_ts, since) :])


_HANDLERS: Handlers[State] = {
    ReplyPlanned: _planned,
    LlmCompleted: _completed,
    MediaTranscribed: _transcribed,
}
apply = dispatcher(_HANDLERS)
PROJECTION = Projection("budget", State, apply, _HANDLERS)
