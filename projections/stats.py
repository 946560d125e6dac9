"""Counts, costs and latencies for ``stats`` and health checks.

The counters are tallies of what the bot recorded, and a ``Compacted`` does
not lower them (``compacted`` says how many events went): money spent stays
spent, and a rotation only makes room. They are not exact counts of what
the log holds now, which only a ``Compacted`` carrying every removed event
could keep exact; a fold of the whole log (no snapshot fits) counts afresh
from what is left. One exception follows the log exactly: a forget (a marker selecting whole
chats) drops those chats' counts, and their events from ``by_type`` and
``replies_sent``: nothing about a forgotten chat stays, and a fold of what is
left agrees. The connection's state is ``projections.connection``'s.

The oldest event is the log's to say (``LogReader.read(limit=1)``).
"""

from __future__ import annotations

import math

import msgspec

from events.model import (
    EVENT_TYPES,
    Compacted,
    Event,
    LlmCompleted,
    LlmFailed,
    MessageSkipped,
    Recorded,
    ReplyFailed,
    ReplySent,
)
from projections import spend
from projections.base import Handler, Handlers, Projection, removal

LATENCIES = 1000  # the window p50/p95 are computed over


class State(msgspec.Struct, kw_only=True):
    by_type: dict[str, int] = msgspec.field(
        default_factory=lambda: {t.__name__: 0 for t in EVENT_TYPES}
    )
    by_chat: dict[str, int] = {}  # events per chat (events without a chat are not counted)
    replies_sent: int = 0
    llm_failures: int = 0  # final ones
    reply_failures: int = 0  # final ones
    spend_usd: dict[str, float] = {}  # SpendKind -> USD (projections.spend)
    compacted: int = 0  # events removed by compaction
    # Ring buffer of the last LATENCIES latencies (ms); ``next_latency`` is the slot to overwrite.
    latencies: list[float] = []
    next_latency: int = 0
    newest_ts: float = 0.0
    # LID -> messages from it that no monitored chat could be told for (unresolved_lid)
    unresolved_lids: dict[str, int] = {}


def _count(state: State, rec: Recorded, ev: Event) -> None:
    name = type(ev).__name__
    by_type = state.by_type
    by_type[name] += 1
    chat = ev.chat
    if chat:
        by_chat = state.by_chat
        by_chat[chat] = by_chat.get(chat, 0) + 1
    ts = rec.ts
    if ts > state.newest_ts:  # noqa: PLR1730 - a call to max() per event is measurable
        state.newest_ts = ts


def _completed(state: State, rec: Recorded, ev: LlmCompleted) -> None:
    _spent(state, rec, ev)
    if len(state.latencies) < LATENCIES:
        state.latencies.append(ev.latency_ms)
    else:
        state.latencies[state.next_latency] = ev.latency_ms
    state.next_latency = (state.next_latency + 1) % LATENCIES


def _skipped(state: State, rec: Recorded, ev: MessageSkipped) -> None:
    _count(state, rec, ev)
    if ev.reason == "unresolved_lid":
        state.unresolved_lids[ev.chat] = state.unresolved_lids.get(ev.chat, 0) + 1


def _spent(state: State, rec: Recorded, ev: Event) -> None:
    _count(state, rec, ev)
    found = spend.cost(ev)
    if found is not None:
        kind, usd = found
        state.spend_usd[kind] = state.spend_usd.get(kind, 0.0) + usd


def spent(state: State) -> float:
    """Everything spent, every kind (see ``spend_usd`` for each)."""
    return sum(state.spend_usd.values())


def _llm_failed(state: State, rec: Recorded, ev: LlmFailed) -> None:
    _count(state, rec, ev)
    if ev.final:
        state.llm_failures += 1


def _sent(state: State, rec: Recorded, ev: ReplySent) -> None:
    _count(state, rec, ev)
    state.replies_sent += 1


def _reply_failed(state: State, rec: Recorded, ev: ReplyFailed) -> None:
    _count(state, rec, ev)
    if ev.final:
        state.reply_failures += 1


def _compacted(state: State, rec: Recorded, ev: Compacted) -> None:
    gone = removal(ev)
    if gone is not None and ev.chats is not None and ev.older_than is None and ev.seqs is None:
        _forgotten(state, ev)
    # The marker is counted, but as no chat's: a forgotten chat has no events left.
    # (Older versions filed a forget's marker under the chat it forgot.)
    _count(state, rec, msgspec.structs.replace(ev, chat=""))
    state.compacted += ev.removed


def _forgotten(state: State, ev: Compacted) -> None:
    """Drop the counts of the chats a forget removed whole."""
    counted = sum(state.by_chat.pop(chat, 0) for chat in ev.chats or ())
    for chat in ev.chats or ():
        state.unresolved_lids.pop(chat, None)
    # Only what this state counted comes off: a fold of the compacted log never saw them.
    if counted and counted == ev.removed:
        for name, n in ev.by_type.items():
            state.by_type[name] = state.by_type.get(name, 0) - n
        state.replies_sent -= ev.by_type.get(ReplySent.__name__, 0)


def percentile(state: State, q: float) -> float | None:
    """The ``q``-th percentile (0-100, nearest rank) of recent LLM latencies in ms."""
    if not state.latencies:
        return None
    ranked = sorted(state.latencies)
    rank = math.ceil(q / 100 * len(ranked))
    return ranked[min(max(rank, 1), len(ranked)) - 1]


_SPECIFIC: dict[type[Event], Handler[State]] = {
    LlmCompleted: _completed,
    LlmFailed: _llm_failed,
    MessageSkipped: _skipped,
    **{t: _spent for t in spend.SPENDING if t is not LlmCompleted},
    ReplySent: _sent,
    ReplyFailed: _reply_failed,
    Compacted: _compacted,
}
_HANDLERS: Handlers[State] = {t: _SPECIFIC.get(t, _count) for t in EVENT_TYPES}
PROJECTION = Projection.of("stats", State, _HANDLERS)
apply = PROJECTION.apply
