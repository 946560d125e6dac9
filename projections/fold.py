"""All projections folded together: the combined state and the one-pass dispatch.

Each event type maps to one step that calls the handlers (bound to their
states) of exactly the projections that handle it, so an event costs one dict
lookup, one call, plus its handlers.
"""

from __future__ import annotations

import importlib
import sys
import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

import msgspec

from events.model import EVENT_TYPES, AnyEvent, Compacted, Event, Recorded
from projections import (
    account,
    addresses,
    alerts,
    aliases,
    budget,
    configs,
    connection,
    deliveries,
    facts,
    failures,
    group_talk,
    identity,
    loops,
    outbox,
    own_sends,
    pauses,
    queue,
    reminders,
    retention,
    schedule,
    sessions,
    stats,
    takeover,
    timers,
)
from projections.base import Handler, Projection

_NEVER = sys.maxsize
# ``step(rec, event)``: every handler of the event's type, each with its state.
Step = Callable[[Recorded, Any], None]
Table = dict[type[Event], Step]


class States(msgspec.Struct, kw_only=True):
    """Every projection's state and the last folded seq; also the snapshot format.

    This is the one list of the daemon's projections: each field is named after
    its module in this package, whose ``PROJECTION`` folds that field's state.
    ``ALL`` and the snapshot version are derived from it. A projection left out
    of a fold keeps its empty state.
    """

    seq: int = 0
    queue: queue.State = msgspec.field(default_factory=queue.State)
    outbox: outbox.State = msgspec.field(default_factory=outbox.State)
    sessions: sessions.State = msgspec.field(default_factory=sessions.State)
    own_sends: own_sends.State = msgspec.field(default_factory=own_sends.State)
    aliases: aliases.State = msgspec.field(default_factory=aliases.State)
    budget: budget.State = msgspec.field(default_factory=budget.State)
    takeover: takeover.State = msgspec.field(default_factory=takeover.State)
    configs: configs.State = msgspec.field(default_factory=configs.State)
    stats: stats.State = msgspec.field(default_factory=stats.State)
    connection: connection.State = msgspec.field(default_factory=connection.State)
    schedule: schedule.State = msgspec.field(default_factory=schedule.State)
    retention: retention.State = msgspec.field(default_factory=retention.State)
    identity: identity.State = msgspec.field(default_factory=identity.State)
    addresses: addresses.State = msgspec.field(default_factory=addresses.State)
    alerts: alerts.State = msgspec.field(default_factory=alerts.State)
    timers: timers.State = msgspec.field(default_factory=timers.State)
    deliveries: deliveries.State = msgspec.field(default_factory=deliveries.State)
    account: account.State = msgspec.field(default_factory=account.State)
    pauses: pauses.State = msgspec.field(default_factory=pauses.State)
    failures: failures.State = msgspec.field(default_factory=failures.State)
    loops: loops.State = msgspec.field(default_factory=loops.State)
    reminders: reminders.State = msgspec.field(default_factory=reminders.State)
    facts: facts.State = msgspec.field(default_factory=facts.State)
    group_talk: group_talk.State = msgspec.field(default_factory=group_talk.State)


def _projections() -> tuple[Projection[Any], ...]:
    found = []
    for name in States.__struct_fields__[1:]:
        projection = importlib.import_module(f"projections.{name}").PROJECTION
        if projection.name != name:
            raise TypeError(f"States.{name} is folded by a projection named {projection.name!r}")
        found.append(projection)
    return tuple(found)


ALL: tuple[Projection[Any], ...] = _projections()
# The shape of every state: a snapshot of another shape is never decoded.
SNAPSHOT_VERSION = zlib.crc32(msgspec.json.encode(msgspec.json.schema(States)))


def dispatch_table(states: States, projections: Sequence[Projection[Any]] = ALL) -> Table:
    """Event type -> the step calling the handler of each of ``projections`` that handles it."""
    table: dict[type[Event], list[tuple[Handler[Any], Any]]] = {t: [] for t in EVENT_TYPES}
    for projection in projections:
        state = getattr(states, projection.name)
        for event_type, handler in projection.handlers.items():
            table[event_type].append((handler, state))
    return {t: _step(pairs) for t, pairs in table.items()}


def _step(pairs: Sequence[tuple[Handler[Any], Any]]) -> Step:
    """One function calling each handler of ``pairs`` in order with its state.

    Its source is generated (as ``dataclasses`` generates ``__init__``): a
    straight line of calls with the handlers and states bound as globals costs
    less per event than a loop unpacking a (handler, state) pair per projection,
    and the fold runs it for every event of the log. Only indexes enter the source.
    """
    bound: dict[str, Any] = {}
    lines = ["def step(rec, event):"]
    for n, (handler, state) in enumerate(pairs):
        bound[f"h{n}"], bound[f"s{n}"] = handler, state
        lines.append(f"    h{n}(s{n}, rec, event)")
    if not pairs:
        lines.append("    pass")
    exec("\n".join(lines), bound)
    return cast(Step, bound["step"])


def absorbs(projections: Sequence[Projection[Any]]) -> bool:
    """Whether every one of ``projections`` drops what a ``Compacted`` says went."""
    return all(Compacted in p.handlers for p in projections)


def feed(
    states: States,
    table: Table,
    records: Iterable[Recorded],
    refold_after: int | None = None,
    *,
    absorbing: bool = True,
) -> Recorded | None:
    """Fold ``records`` through ``table``, advancing ``states.seq`` as it goes.

    Each projection absorbs a ``Compacted`` itself, dropping what it derived
    from the events that went. With ``refold_after`` set, stops after the
    first marker with a seq above it that removed events the folded state
    cannot drop (a marker that does not say which events went, or projections
    that do not absorb when ``absorbing`` is False) and returns that record:
    the caller must refold. Otherwise returns None.
    """
    stop_after = _NEVER if refold_after is None else refold_after
    compacted = Compacted  # hot loop: locals only
    last = None
    try:
        for rec in records:
            event = rec.event
            kind = type(event)
            table[kind](rec, event)
            last = rec
            if kind is compacted and rec.seq > stop_after and _unabsorbed(event, absorbing):
                return rec
    finally:
        if last is not None:
            states.seq = last.seq
    return None


def _unabsorbed(event: Event, absorbing: bool) -> bool:
    marker = cast(Compacted, event)
    return bool(marker.removed) and (not absorbing or marker.keep is None)


def fold(records: Iterable[Recorded], projections: Sequence[Projection[Any]] = ALL) -> States:
    """The states after folding ``records`` from empty (no log to refold from)."""
    states = States()
    feed(states, dispatch_table(states, projections), records)
    return states


def after(states: States, events: Sequence[AnyEvent], ts: float) -> States:
    """``states`` as ``events`` would leave them once recorded at ``ts``; ``states``
    itself is untouched (the projections the events reach are folded into copies).

    For a decision made of several steps before one commit (a model's answer
    calling two tools): each step sees what the earlier ones did. The records'
    seqs are provisional (after ``states.seq``); the log assigns the real ones.
    """
    if not events:
        return states
    kinds = {type(event) for event in events}
    reached = [p for p in ALL if not kinds.isdisjoint(p.handlers)]
    copies = {p.name: _copy(getattr(states, p.name)) for p in reached}
    changed = msgspec.structs.replace(states, **copies)
    records = (Recorded(states.seq + n, ts, event) for n, event in enumerate(events, 1))
    feed(changed, dispatch_table(changed, reached), records)
    return changed


def _copy(state: Any) -> Any:
    # Through msgpack, as a snapshot goes: every state is built to survive that.
    return msgspec.msgpack.decode(msgspec.msgpack.encode(state), type=type(state))


_decoder = msgspec.msgpack.Decoder(States)


def encode(states: States) -> bytes:
    return msgspec.msgpack.encode(states)


def decode(blob: bytes) -> States:
    """Raises ``msgspec.DecodeError`` (a ValueError) when the blob has another shape."""
    return _decoder.decode(blob)
