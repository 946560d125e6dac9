"""Counts, costs and latencies for ``stats`` and health checks."""

from __future__ import annotations

import math

import msgspec

from events.model import (
    EVENT_TYPES,
    Compacted,
    Event,
    LlmCompleted,
    LlmFailed,
    MediaTranscribed,
    Recorded,
    ReplyFailed,
    ReplySent,
    TransportStatus,
)
from projections.base import Handler, Handlers, Projection, dispatcher

LATENCIES = 1000  # the window p50/p95 are computed over


class State(msgspec.Struct, kw_only=True):
    by_type: dict[str, int] = msgspec.field(
        default_factory=lambda: {t.__name__: 0 for t in EVENT_TYPES}
    )
    by_chat: dict[str, int] = {}  # events per chat (events without a chat are not counted)
    replies_sent: int = 0
    llm_failures: int = 0  # final ones
    reply_failures: int = 0  # final ones
    cost_usd: float = 0.0
    compacted: int = 0  # events removed by compaction
    # Ring buffer of the last LATENCIES latencies (ms); ``next_latency`` is the slot to overwrite.
    latencies: list[float] = []
    next_latency: int = 0
    first_seq: int = 0  # oldest event still in the log (0: none yet)
    first_ts: float = 0.0
    newest_ts: float = 0.0
    transport_state: str | None = None
    transport_detail: str = ""


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
    if not state.first_seq:
        state.first_seq = rec.seq
        state.first_ts = ts


def _completed(state: State, rec: Recorded, ev: LlmCompleted) -> None:
    _count(state, rec, ev)
    state.cost_usd += ev.usage.cost_usd or 0.0
    if len(state.latencies) < LATENCIES:
        state.latencies.append(ev.latency_ms)
    else:
        state.latencies[state.next_latency] = ev.latency_ms
    state.next_latency = (state.next_latency + 1) % LATENCIES


def _transcribed(state: State, rec: Recorded, ev: MediaTranscribed) -> None:
    _count(state, rec, ev)
    state.cost_usd += ev.cost_usd or 0.0


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


def _transport(state: State, rec: Recorded, ev: TransportStatus) -> None:
    _count(state, rec, ev)
    state.transport_state = ev.state
    state.transport_detail = ev.detail


def _compacted(state: State, rec: Recorded, ev: Compacted) -> None:
    _count(state, rec, ev)
    state.compacted += ev.removed


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
    MediaTranscribed: _transcribed,
    ReplySent: _sent,
    ReplyFailed: _reply_failed,
    TransportStatus: _transport,
    Compacted: _compacted,
}
_HANDLERS: Handlers[State] = {t: _SPECIFIC.get(t, _count) for t in EVENT_TYPES}
apply = dispatcher(_HANDLERS)
PROJECTION = Projection("stats", State, apply, _HANDLERS)
