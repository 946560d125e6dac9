"""The log's interface, declared once: what every backend offers readers and writers.

``LogReader`` is all that projections, ``audit``, ``stats`` and ``replay.py``
need; ``LogWriter`` adds the three ways the log changes (append, compact,
snapshot) and ``purge``, which ``forget`` runs to leave no trace of what went.
SQLite (read-write and read-only), the in-memory twin and any later backend
implement these, and ``events.testing`` states their guarantees once.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection, Iterator
from typing import Literal, NamedTuple, Protocol, Self, runtime_checkable

import msgspec

from events.codec import US
from events.model import AnyEvent, Compacted, Recorded

CompactReason = Literal["rotation", "expiry", "forget"]


class LogError(Exception):
    """The log could not do what was asked (locked too long, disk full, corrupt)."""


class NoLog(LogError):
    """There is no readable event log where one was expected (wrong ``--store``)."""


class LogUnavailable(LogError):
    """The log's database cannot be reached just now; the same call may succeed later."""


class Removal:
    """Which events a compaction selects (``selects``) or removed (``gone``).

    The one statement of the rule: ``Selection.matches`` in the log backends
    and every projection's ``Compacted`` handler use it. Times compare in whole
    microseconds, as the logs store them.
    """

    __slots__ = ("before", "chats", "cutoff_us", "keep", "seqs")

    def __init__(
        self,
        *,
        before: int,
        chats: frozenset[str] | None,
        older_than: float | None,
        seqs: frozenset[int] | None,
        keep: frozenset[int],
    ) -> None:
        self.before = before
        self.chats = chats
        self.cutoff_us = None if older_than is None else round(older_than * US)
        self.seqs = seqs
        self.keep = keep

    def selects(self, seq: int, ts: float, chat: str) -> bool:
        """Whether an event at ``seq``/``ts`` of ``chat`` meets every condition."""
        return (
            (self.chats is None or chat in self.chats)
            and (self.cutoff_us is None or round(ts * US) < self.cutoff_us)
            and (self.seqs is None or seq in self.seqs)
            and seq not in self.keep
        )

    def gone(self, seq: int, ts: float, chat: str) -> bool:
        """Whether the compaction removed the (non-marker) event at ``seq``."""
        return seq < self.before and self.selects(seq, ts, chat)


def removal(marker: Compacted) -> Removal | None:
    """The test "did this compaction remove that event"; None when the marker cannot say."""
    if marker.keep is None:
        return None
    return Removal(
        before=marker.before,
        chats=None if marker.chats is None else frozenset(marker.chats),
        older_than=marker.older_than,
        seqs=None if marker.seqs is None else frozenset(marker.seqs),
        keep=frozenset(marker.keep),
    )


class Forgotten(LogError):
    """A guarded append refused: a ``forget`` of a chat it concerns came after its decision."""


class Guard(NamedTuple):
    """The condition of an append decided from the log as of ``seen``: refused, with
    nothing written, if a ``forget`` of one of ``chats`` was recorded after ``seen`` or
    is under way when it would commit (checked in the append's own transaction).

    A forget fixes which events it removes and records that it is under way in one
    transaction (its row in ``compactions``), so an append either commits before
    (its events are among those removed) or sees it; what it decided from events the
    forget removes is then never recorded.
    """

    chats: frozenset[str]
    seen: int

    def refuses(self, reason: CompactReason, chats: Collection[str] | None) -> bool:
        """Whether a compaction of ``reason`` and ``chats`` (recorded after ``seen``, or
        under way) forgets a chat this append concerns."""
        return reason == "forget" and chats is not None and not self.chats.isdisjoint(chats)

    def refusal(self) -> Forgotten:
        return Forgotten(
            f"append refused: {len(self.chats)} chat(s) forgotten since seq {self.seen}"
        )


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
        return not isinstance(rec.event, Compacted) and self.rule.selects(rec.seq, rec.ts, rec.chat)

    @property
    def rule(self) -> Removal:
        return Removal(
            before=sys.maxsize,
            chats=self.chats,
            older_than=self.older_than,
            seqs=self.seqs,
            keep=self.keep,
        )


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
        """The ``media.sha256`` every message still in the log names, and the ``sha256``
        of every spoken reply's audio (``SpeechSynthesized``): the stored files in use.

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

    def append(self, *items: AnyEvent | Keyed, guard: Guard | None = None) -> list[Recorded]:
        """Append a burst atomically; an existing key's slot holds the earlier event.

        With ``guard``: ``Forgotten``, nothing written, when it refuses (``Guard``).
        """
        ...

    def compact(
        self, reason: CompactReason, selection: Selection, *, progress: Progress | None = None
    ) -> Recorded | None:
        """Remove the selected events and record one ``Compacted``; None if none matched.

        Only events that exist when it starts are selected. The events go in
        short chunks (``progress`` hears of each) that appends interleave with;
        the marker is written once, after the last. The chunk that removes the
        first events also drops every snapshot (they may hold what goes: a
        snapshot is a cache, folded again from the log), and none is stored
        until the marker is. Removal and marker are all-or-nothing as a reader
        of the finished log sees it: the log keeps, with the events, what went
        so far (``events.compaction.Pending``), so a failure before the marker
        (a full disk, a crash, a lost connection) is finished by the next
        compaction or ``finish_compactions``: the rest goes and one marker
        says all that went. Compactions a failure left unfinished are finished
        first; when this one then finds nothing left, the marker of an
        unfinished one of the same reason and selection (for a rotation, of
        any cut-off) is returned.
        """
        ...

    def finish_compactions(self) -> list[Recorded]:
        """Finish every compaction a failure left without its marker; their markers.

        The daemon calls it as it starts, before folding: a forget that failed
        halfway is completed, and no snapshot keeps what it removed.
        """
        ...

    def save_snapshot(self, name: str, version: int, seq: int, state: bytes) -> None:
        """Store a projection cache; snapshots are not facts and may be dropped.

        A snapshot older than a recorded compaction is not stored: it may hold
        what the compaction removed.
        """
        ...

    def purge(self) -> None:
        """Drop every snapshot and make what compactions removed unreadable in storage."""
        ...

    def subscribe(self, callback: Callable[[int], None]) -> Callable[[], None]:
        """Call ``callback(last_seq)`` after every commit of this process; returns unsubscribe."""
        ...


@runtime_checkable
class AppendsNow(Protocol):
    """A log that can commit on the caller's thread when that costs no wait."""

    def append_now(
        self, *items: AnyEvent | Keyed, guard: Guard | None = None
    ) -> list[Recorded] | None:
        """``append`` if it needs no lock that is taken and no sync; else None, nothing written."""
        ...
