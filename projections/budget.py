"""What the limits count: replies per chat in the last hour, spend over recent days
(every cost ``projections.spend`` defines, by kind).

A reply is an answer: one split into parts (``ReplyPlanned.part``) counts once.

Old entries are pruned once per hour of log time (a sweep), so each list stays
bounded by the activity of one window plus one hour; queries filter by ``now``.

The daily budget must also hold while calls are out: a call's cost is known
only once it is answered, and chats are answered concurrently. So the calls in
flight (an ``LlmRequested`` with no ``LlmCompleted`` or final ``LlmFailed``
yet; one per chat, since a chat's turns go one after another) are kept, and
``committed`` reserves each at the mean cost of the recent calls.

A failed attempt whose answer was billed (``LlmFailed`` with ``usage``) is
spent like an answer, and counts in that mean too.

A ``Compacted`` drops the replies, costs, calls in flight and recent costs
whose events went; spend that went no longer counts. The sweep's bookkeeping
(``newest``, ``swept_at``) stays, so a state that absorbed a compaction and a
fold of what is left agree once both are swept at the same time. The recent
costs that are left stay the estimate until new answers push them out (a fold
of what is left could reach further back).
"""

from __future__ import annotations

import math
import struct
import sys
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Collection, Sequence
from typing import Any, NamedTuple

import msgspec

from events.model import (
    Compacted,
    Event,
    LlmCompleted,
    LlmFailed,
    LlmRequested,
    MessageSkipped,
    Recorded,
    ReplyPlanned,
)
from events.units import HOUR
from projections import spend
from projections.base import Handlers, Origin, Projection, origin, removal
from projections.spend import SpendKind

SPEND_WINDOW = 8 * 24 * HOUR  # a day's budget in any time zone, with room to spare
ESTIMATE_CALLS = 20  # the answered calls whose mean cost a call in flight is reserved at


class State(msgspec.Struct, kw_only=True):
    newest: float = 0.0  # ts of the newest event seen
    swept_at: float = 0.0
    replies: dict[str, list[float]] = {}  # chat -> ts of planned replies
    reply_seqs: dict[str, list[int]] = {}  # chat -> their seqs
    # Costs as parallel columns sorted by ts (log order), so a window is one bisect.
    # A week of costs is many: the time and seq of each are packed in ``cost_at``
    # (``_times``, ``_seqs``), 16 bytes a cost where lists held a float and an int
    # object (56 B with their slots).
    cost_at: bytearray = bytearray()
    cost_usd: list[float] = []
    cost_chat: list[str] = []  # interned: many costs, few chats
    cost_kind: list[str] = []  # a SpendKind
    in_flight: dict[str, str] = {}  # chat -> call_id of its call with no outcome yet
    in_flight_at: dict[str, tuple[int, float]] = {}  # chat -> (seq, ts) of that request
    recent: list[float] = []  # the last ESTIMATE_CALLS answered calls' costs (unknown: 0)
    recent_from: list[Origin] = []  # where each of ``recent`` came from


_AT = struct.Struct("<dq")  # (ts, seq) of a cost, little-endian as the snapshot keeps it
_NATIVE = sys.byteorder == "little"


def _times(state: State) -> Sequence[float]:
    if _NATIVE:  # read in place, not copied
        return memoryview(state.cost_at).cast("d")[::2]
    return _swapped("d", state.cost_at)[::2]


def _seqs(state: State) -> Sequence[int]:
    if _NATIVE:
        return memoryview(state.cost_at).cast("q")[1::2]
    return _swapped("q", state.cost_at)[1::2]


def _swapped(code: str, packed: bytearray) -> array[Any]:
    numbers = array(code, packed)
    numbers.byteswap()
    return numbers


def _seen(state: State, ts: float) -> None:
    if ts <= state.newest:
        return
    state.newest = ts
    if ts - state.swept_at >= HOUR:
        _sweep(state)


def _sweep(state: State) -> None:
    state.swept_at = state.newest
    hour_ago = state.newest - HOUR
    for chat, times in list(state.replies.items()):
        cut = bisect_right(times, hour_ago)  # in log order, so in time order
        if cut == len(times):
            del state.replies[chat], state.reply_seqs[chat]
        elif cut:
            del times[:cut], state.reply_seqs[chat][:cut]
    cut = bisect_left(_times(state), state.newest - SPEND_WINDOW)
    if cut:
        del state.cost_at[: cut * _AT.size], state.cost_usd[:cut]
        del state.cost_chat[:cut], state.cost_kind[:cut]


def _keep_replies(state: State, chat: str, kept: list[int]) -> None:
    """Keep the replies of ``chat`` at the indices ``kept``."""
    times, seqs = state.replies[chat], state.reply_seqs[chat]
    if not kept:
        del state.replies[chat], state.reply_seqs[chat]
    elif len(kept) < len(times):
        state.replies[chat] = [times[i] for i in kept]
        state.reply_seqs[chat] = [seqs[i] for i in kept]


def _planned(state: State, rec: Recorded, ev: ReplyPlanned) -> None:
    _seen(state, rec.ts)
    # An answer split into parts is one reply: its first part counts, the rest do not.
    if ev.purpose == "reply" and ev.opens_answer:
        times = state.replies.get(ev.chat)
        if times is None:
            state.replies[ev.chat] = [rec.ts]
            state.reply_seqs[ev.chat] = [rec.seq]
        else:
            times.append(rec.ts)
            state.reply_seqs[ev.chat].append(rec.seq)


def _completed(state: State, rec: Recorded, ev: LlmCompleted) -> None:
    _landed(state, ev.chat, ev.call_id)
    _spent(state, rec, ev)
    # A provider that reports no cost adds nothing to the spend either.
    _estimated(state, rec, ev.usage.cost_usd or 0.0)


def _estimated(state: State, rec: Recorded, usd: float) -> None:
    state.recent.append(usd)
    state.recent_from.append(origin(rec))
    if len(state.recent) > ESTIMATE_CALLS:
        del state.recent[0], state.recent_from[0]


def _spent(state: State, rec: Recorded, ev: Event) -> None:
    """Any cost (a transcription too: spend, but no LLM call, so the estimate stays)."""
    _seen(state, rec.ts)
    found = spend.cost(ev)
    if found is not None and found[1]:  # unknown and 0 add nothing
        state.cost_at += _AT.pack(rec.ts, rec.seq)
        state.cost_usd.append(found[1])
        state.cost_chat.append(sys.intern(ev.chat))
        state.cost_kind.append(found[0])


def _requested(state: State, rec: Recorded, ev: LlmRequested) -> None:
    # Replaces a call orphaned by a crash in the same chat: it is being asked again.
    state.in_flight[ev.chat] = ev.call_id
    state.in_flight_at[ev.chat] = (rec.seq, rec.ts)


def _failed(state: State, rec: Recorded, ev: LlmFailed) -> None:
    if ev.final:
        _landed(state, ev.chat, ev.call_id)
    if ev.usage is not None:
        # An answer billed but unusable: spent, and what a call may cost. A failure
        # with no answer (an HTTP error, a timeout) was not billed, and says nothing.
        _spent(state, rec, ev)
        _estimated(state, rec, ev.usage.cost_usd or 0.0)


def _skipped(state: State, rec: Recorded, ev: MessageSkipped) -> None:
    # The agent skips in a chat only while no call of its runs: an orphaned call
    # (requested before a crash) that is too old to ask again ends here.
    if state.in_flight.pop(ev.chat, None) is not None:
        del state.in_flight_at[ev.chat]


def _landed(state: State, chat: str, call_id: str) -> None:
    if state.in_flight.get(chat) == call_id:
        del state.in_flight[chat], state.in_flight_at[chat]


def _compacted(state: State, rec: Recorded, ev: Compacted) -> None:
    gone = removal(ev)
    if gone is None:
        return
    for chat, times in list(state.replies.items()):
        seqs = state.reply_seqs[chat]
        _keep_replies(
            state, chat, [i for i, t in enumerate(times) if not gone.gone(seqs[i], t, chat)]
        )
    costs = zip(
        list(_seqs(state)),
        list(_times(state)),
        state.cost_chat,
        state.cost_usd,
        state.cost_kind,
        strict=True,
    )
    left = [c for c in costs if not gone.gone(c[0], c[1], c[2])]
    state.cost_at = bytearray(b"".join(_AT.pack(c[1], c[0]) for c in left))
    state.cost_chat = [c[2] for c in left]
    state.cost_usd = [c[3] for c in left]
    state.cost_kind = [c[4] for c in left]
    for chat, (seq, ts) in list(state.in_flight_at.items()):
        if gone.gone(seq, ts, chat):
            del state.in_flight[chat], state.in_flight_at[chat]
    recent = [
        (o, c) for o, c in zip(state.recent_from, state.recent, strict=True) if not gone.gone(*o)
    ]
    state.recent_from = [o for o, _ in recent]
    state.recent = [c for _, c in recent]


def replies_last_hour(state: State, chat: str, now: float) -> int:
    """Replies planned in ``chat`` during the hour before ``now``."""
    times = state.replies.get(chat, ())
    return len(times) - bisect_right(times, now - HOUR)  # in log order, so in time order


def spent_since(state: State, since: float, kind: SpendKind | None = None) -> float:
    """USD spent at or after ``since`` (at most 8 days back): of ``kind``, else of every kind."""
    start = bisect_left(_times(state), since)
    if kind is None:
        return _total_from(state, since, start)
    return sum(
        c for c, k in zip(state.cost_usd[start:], state.cost_kind[start:], strict=True) if k == kind
    )


class _Total(NamedTuple):
    """A sum of ``usd[start:end]``, and what says it is still that sum."""

    usd: list[float]  # the very list (held, so its id is not reused)
    since: float
    start: int
    start_seq: int  # the seq of the cost at ``start`` (-1: none there)
    end: int
    total: float


_last_total: _Total | None = None


def _total_from(state: State, since: float, start: int) -> float:
    """``sum(state.cost_usd[start:])``, the same float, extended from the last call's sum.

    Every turn asks for today's spend, and a day's costs are many: a running
    total costs a few additions where the sum cost one per cost. Costs are only
    appended, cut from the front (the sweep: the cost at ``start`` changes) or
    replaced by new lists (a compaction, a snapshot), so a sum of the same list
    from the same cost on needs only the costs added since; added one by one,
    left to right, as ``sum`` adds them, so the float is the same.
    """
    global _last_total  # noqa: PLW0603 - one memo, replaced whole (a tuple), never mutated
    usd = state.cost_usd
    start_seq = _seqs(state)[start] if start < len(usd) else -1
    last = _last_total
    if (
        last is not None
        and last.usd is usd
        and last.since == since
        and last.start == start
        and last.start_seq == start_seq
        and last.end <= len(usd)
    ):
        total, end = last.total, last.end
    else:
        total, end = 0, start
    for cost in usd[end:]:
        total += cost
    _last_total = _Total(usd, since, start, start_seq, len(usd), total)
    return total


def estimate(state: State) -> float | None:
    """What a call costs, by the mean of the recent ones; None before any was answered."""
    return sum(state.recent) / len(state.recent) if state.recent else None


def committed(state: State, since: float, deciding: Collection[str] = ()) -> float:
    """Spend since ``since`` plus a reserve for the calls in flight.

    ``deciding`` names chats whose call may not be in the log yet (a chat
    counts once). Each call is reserved at ``estimate``; while none has been
    answered yet, a call in flight might take whatever is left (infinite).
    """
    calls = len(state.in_flight.keys() | set(deciding))
    spent = spent_since(state, since)
    if not calls:
        return spent
    each = estimate(state)
    return math.inf if each is None else spent + calls * each


_HANDLERS: Handlers[State] = {
    ReplyPlanned: _planned,
    LlmCompleted: _completed,
    LlmRequested: _requested,
    LlmFailed: _failed,
    MessageSkipped: _skipped,
    **{t: _spent for t in spend.SPENDING if t not in (LlmCompleted, LlmFailed)},
    Compacted: _compacted,
}
PROJECTION = Projection.of("budget", State, _HANDLERS)
apply = PROJECTION.apply
