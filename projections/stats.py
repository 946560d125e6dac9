"""Counts, costs and latencies for ``stats`` and health checks.

The counters are tallies of what the bot recorded, and a ``Compacted`` does
not lower them (``compacted`` says how many events went): money spent stays
spent, and a rotation only makes room. They are not exact counts of what
the log holds now, which only a ``Compacted`` carrying every removed event
could keep exact; a fold of the whole log (no snapshot fits) counts afresh
from what is left. One exception follows the log exactly: a forget (a marker selecting whole
chats) drops those chats' counts, and their events from ``by_type`` and
``replies_sent``: nothing about a forgotten chat stays, and a fold of what is
left agrees. The per-chat counts (``by_chat``, ``unresolved_lids``) hold the
chats the log still has: a chat whose every event a compaction removed (a LID
that wrote once, months ago; a contact no longer monitored) leaves them, as a
fold of what is left would not see it; kept, they would grow with every chat
ever seen. ``removed`` is what the markers took of each chat still there.
The connection's state is ``projections.connection``'s.

The oldest event is the log's to say (``LogReader.read(limit=1)``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

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
    # chat -> its events the markers say went; its count minus these are the ones left
    removed: dict[str, int] = {}


# What a type's handler does after counting the event, if anything.
More = Callable[[State, Any], None]


def _counter(name: str, more: More | None = None) -> Handler[State]:
    """Counts each event of the type named ``name``, then does ``more``.

    One closure per type: the name is bound once instead of read off the event
    (``type(ev).__name__``) each time, and no handler calls another to count.
    """

    def count(state: State, rec: Recorded, ev: Event) -> None:
        state.by_type[name] += 1
        chat = ev.chat
        if chat:
            by_chat = state.by_chat
            by_chat[chat] = by_chat.get(chat, 0) + 1
        ts = rec.ts
        if ts > state.newest_ts:  # noqa: PLR1730 - a call to max() per event is measurable
            state.newest_ts = ts
        if more is not None:
            more(state, ev)

    return count


def _spender(event_type: type[Event]) -> More:
    """Adds what an event of ``event_type`` spent (``projections.spend``) to its kind."""
    kind, read = spend.reader(event_type)

    def spent(state: State, ev: Event) -> None:
        usd = read(ev) or 0.0
        state.spend_usd[kind] = state.spend_usd.get(kind, 0.0) + usd

    return spent


_llm_spent = _spender(LlmCompleted)


def _completed(state: State, ev: LlmCompleted) -> None:
    _llm_spent(state, ev)
    latencies, slot = state.latencies, state.next_latency
    if len(latencies) < LATENCIES:
        latencies.append(ev.latency_ms)
    else:
        latencies[slot] = ev.latency_ms
    state.next_latency = (slot + 1) % LATENCIES


def _skipped(state: State, ev: MessageSkipped) -> None:
    if ev.reason == "unresolved_lid":
        state.unresolved_lids[ev.chat] = state.unresolved_lids.get(ev.chat, 0) + 1


def spent(state: State) -> float:
    """Everything spent, every kind (see ``spend_usd`` for each)."""
    return sum(state.spend_usd.values())


_llm_failed_spent = _spender(LlmFailed)


def _llm_failed(state: State, ev: LlmFailed) -> None:
    if ev.final:
        state.llm_failures += 1
    _llm_failed_spent(state, ev)  # an answer billed but unusable


def _sent(state: State, ev: ReplySent) -> None:
    state.replies_sent += 1


def _reply_failed(state: State, ev: ReplyFailed) -> None:
    if ev.final:
        state.reply_failures += 1


_count_marker = _counter(Compacted.__name__)


def _compacted(state: State, rec: Recorded, ev: Compacted) -> None:
    gone = removal(ev)
    if gone is not None and ev.chats is not None and ev.older_than is None and ev.seqs is None:
        _forgotten(state, ev)
    else:
        _emptied(state, ev)
    # The marker is counted, but as no chat's: a forgotten chat has no events left.
    # (Older versions filed a forget's marker under the chat it forgot.)
    _count_marker(state, rec, msgspec.structs.replace(ev, chat=""))
    state.compacted += ev.removed


def _emptied(state: State, ev: Compacted) -> None:
    """Drop the counts of the chats the marker left with no event."""
    by_chat, removed = state.by_chat, state.removed
    for chat, n in ev.by_chat.items():
        count = by_chat.get(chat)
        if count is None:
            continue  # no event of it was counted (chat-less ones: "")
        went = removed.get(chat, 0) + n
        if went < count:
            removed[chat] = went
            continue
        del by_chat[chat]
        removed.pop(chat, None)
        state.unresolved_lids.pop(chat, None)


def _forgotten(state: State, ev: Compacted) -> None:
    """Drop the counts of the chats a forget removed whole."""
    counted = sum(state.by_chat.pop(chat, 0) for chat in ev.chats or ())
    for chat in ev.chats or ():
        state.unresolved_lids.pop(chat, None)
        state.removed.pop(chat, None)
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


_MORE: dict[type[Event], More] = {
    LlmCompleted: _completed,
    LlmFailed: _llm_failed,
    MessageSkipped: _skipped,
    **{t: _spender(t) for t in spend.SPENDING if t not in (LlmCompleted, LlmFailed)},
    ReplySent: _sent,
    ReplyFailed: _reply_failed,
}
_HANDLERS: Handlers[State] = {
    **{t: _counter(t.__name__, _MORE.get(t)) for t in EVENT_TYPES},
    Compacted: _compacted,
}
PROJECTION = Projection.of("stats", State, _HANDLERS)
apply = PROJECTION.apply
