"""The shape every projection shares: a state, per-event-type handlers, a fold step."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from events.model import Compacted, Event, Recorded
from events.protocol import Removal
from events.protocol import removal as removal_of

S = TypeVar("S")

# The event argument is always of the type the handler is registered under;
# ``Any`` lets one table hold handlers for different event types.
Handler = Callable[[S, Recorded, Any], None]
Handlers = Mapping[type[Event], Handler[S]]


# Where a fact came from, to tell whether a compaction removed it: (seq, ts, chat).
Origin = tuple[int, float, str]


def origin(rec: Recorded) -> Origin:
    return (rec.seq, rec.ts, rec.event.chat)


_memo: tuple[Compacted | None, Removal | None] = (None, None)


def removal(marker: Compacted) -> Removal | None:
    """``marker.removal()``, built once for all the projections absorbing that marker."""
    global _memo  # noqa: PLW0603 - a one-slot cache, replaced whole (threads may share it)
    memo = _memo
    if memo[0] is marker:
        return memo[1]
    found = removal_of(marker)
    _memo = (marker, found)
    return found


def dispatcher(handlers: Handlers[S]) -> Callable[[S, Recorded], S]:
    """``apply(state, rec)``: one dict lookup, then the handler updates ``state`` in place."""
    lookup = handlers.get

    def apply(state: S, rec: Recorded) -> S:
        event = rec.event
        handler = lookup(type(event))
        if handler is not None:
            handler(state, rec, event)
        return state

    return apply


@dataclass(frozen=True, slots=True)
class Projection(Generic[S]):
    """A named fold: ``state_type()`` is the empty state, ``apply`` folds one record.

    ``handlers`` is exposed so the runner can route each event type straight to
    the projections that care, with no second lookup. ``name`` is also the
    attribute under which the runner holds the state.
    """

    name: str
    state_type: type[S]
    apply: Callable[[S, Recorded], S]
    handlers: Handlers[S]

    @classmethod
    def of(cls, name: str, state_type: type[S], handlers: Handlers[S]) -> Projection[S]:
        """The projection folding ``handlers`` into a ``state_type`` under ``name``."""
        return cls(name, state_type, dispatcher(handlers), handlers)

    @property
    def handles(self) -> frozenset[type[Event]]:
        return frozenset(self.handlers)
