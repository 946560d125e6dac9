"""The log's interface, declared once: what every backend offers readers and writers.

``LogReader`` is all that projections, ``audit``, ``stats`` and ``replay.py``
need; ``LogWriter`` adds the three ways the log changes (append, compact,
snapshot). SQLite (read-write and read-only), the in-memory twin and any later
backend implement these, and ``events.testing`` states their guarantees once.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from typing import Literal, NamedTuple, Protocol, Self

import msgspec

from events.model import AnyEvent, Compacted, Recorded

CompactReason = Literal["rotation", "expiry", "forget"]


class LogError(Exception):
    """The log could not do what was asked (locked too long, disk full, corrupt)."""


class NoLog(LogError):
    """There is no readable event log where one was expected (wrong ``--store``)."""


class LogUnavailable(LogError):
    """The log's database cannot be reached just now; the same call may succeed later."""


class Keyed(NamedTuple):
    """An event with an idempotency key: appending an existing key is a no-op."""

    event: AnyEvent
    key: str


class Chunk(NamedTuple):
    """Progress of a compaction, reported after each chunk is committed."""

    removed: int  # events removed so far by this compaction
    held: float  # seconds the chunk's transaction took (SQLite: the write lock held)


Progress = Callable[[Chunk], None]


class Selection(msgspec.Struct, frozen=True, kw_only=True):
    """Which events a compaction removes: those meeting every condition given.

    Conditions are what a backend can evaluate on its own columns (an index,
    not a decode of every body), so compaction never re-reads the log.
    ``Compacted`` markers are never selected: they say what went.
    """

    chats: frozenset[str] | None = None  # only events of these chats
    older_than: float | None = None  # only events recorded before this unix time
    seqs: frozenset[int] | None = None  # only these positions
    keep: frozenset[int] = frozenset()  # never these positions

    def matches(self, rec: Recorded) -> bool:
        """The same rule in Python, for backends without a query language."""
        return (
            not isinstance(rec.event, Compacted)
            and (self.chats is None or rec.chat in self.chats)
            and (self.older_than is None or rec.ts < self.older_than)
            and (self.seqs is None or rec.seq in self.seqs)
            and rec.seq not in self.keep
        )

    @property
    def marker_chat(self) -> str:
        """The envelope chat of the ``Compacted`` marker: the chat, when there is one."""
        return next(iter(self.chats)) if self.chats is not None and len(self.chats) == 1 else ""


class LogReader(Protocol):
    """Reading the log: in order, by position, optionally by chat."""

    def read(
        self, after: int = 0, *, chats: Collection[str] | None = None, limit: int | None = None
    ) -> Iterator[Recorded]:
        """Events with ``seq > after`` (of ``chats`` if given) in log order, in bounded chunks."""
        ...

    def last_seq(self) -> int:
        """The highest seq committed by anyone."""
        ...

    def wait(self, after: int, timeout: float | None = None) -> bool:
        """Block until an event with ``seq > after`` exists; False on timeout."""
        ...

    def chats(self) -> set[str]:
        """Every chat with at least one event."""
        ...

    def media(self) -> set[str]:
        """The ``media.sha256`` every message still in the log names (its stored files).

        Answered by the backend (an index), not by decoding the log.
        """
        ...

    def load_snapshot(self, name: str, version: int) -> tuple[int, bytes] | None: ...

    def size_bytes(self) -> int:
        """The log's footprint in its storage."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


class LogWriter(LogReader, Protocol):
    """Reading plus the only ways the log changes."""

    def append(self, *items: AnyEvent | Keyed) -> list[Recorded]:
        """Append a burst atomically; an existing key's slot holds the earlier event."""
        ...

    def compact(
        self, reason: CompactReason, selection: Selection, *, progress: Progress | None = None
    ) -> Recorded | None:
        """Remove the selected events and record one ``Compacted``; None if none matched.

        Only events that exist when it starts are selected. The events go in
        short chunks (``progress`` hears of each) that appends interleave with;
        the marker is written once, after the last. A crash midway leaves the
        log correct without a marker: compacting again removes the rest.
        """
        ...

    def save_snapshot(self, name: str, version: int, seq: int, state: bytes) -> None:
        """Store a projection cache; snapshots are not facts and may be dropped."""
        ...

    def subscribe(self, callback: Callable[[int], None]) -> Callable[[], None]:
        """Call ``callback(last_seq)`` after every commit of this process; returns unsubscribe."""
        ...
