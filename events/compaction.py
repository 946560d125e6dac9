"""What every backend's compaction shares: chunks sized by time, and the tally behind the marker.

A compaction removes events in many short transactions so appends interleave
with it. How many rows fit in one is not known in advance (a row's indexes,
the disk, the machine's load), so ``Pacer`` sizes each chunk from how long the
last took, aiming at ``TARGET`` seconds: long enough that a chunk's fixed cost
is small, short enough that an append waiting behind it is never late.
"""

from __future__ import annotations

import secrets
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from operator import itemgetter

import msgspec

from events.model import Compacted, Recorded
from events.protocol import Chunk, CompactReason, Guard, Progress, Selection

__all__ = [
    "TARGET",
    "Pacer",
    "Pending",
    "Running",
    "Tally",
    "announces",
    "answer",
    "finish_left",
    "forgets",
    "removed",
]

TARGET = 0.045  # seconds one chunk may take: an append waits at most about this long
_FIRST = 256  # rows in the first chunk, before anything was measured
_FEWEST = 16
_MOST = 50_000
_SEQ, _TYPE, _CHAT = itemgetter(0), itemgetter(1), itemgetter(2)  # of a removed row


class Pacer:
    """How many rows the next chunk takes: as many as fit in ``target`` seconds.

    A chunk grows at most twofold over the last, so one fast chunk (a cold
    cache warming up) cannot make the next one long.
    """

    def __init__(self, target: float = TARGET, first: int = _FIRST) -> None:
        self.target = target
        self.size = first

    def took(self, rows: int, seconds: float) -> None:
        if rows < self.size:
            return  # a short last chunk says nothing about the rate
        fit = rows * self.target / seconds if seconds > 0 else rows * 2
        self.size = max(_FEWEST, min(_MOST, rows * 2, int(fit)))


class Tally:
    """What a compaction removed so far, by type; reports each chunk to ``progress``."""

    def __init__(self, progress: Progress | None = None) -> None:
        self.by_type: dict[str, int] = {}
        self.by_chat: dict[str, int] = {}
        self.last = 0
        self.removed = 0
        self._progress = progress

    def add(self, rows: list[tuple[int, str, str]], held: float) -> None:
        """``rows``: the ``(seq, type, chat)`` of the events one chunk removed."""
        if rows:
            # Counted in C (a Counter over itemgetters): a chunk is thousands of rows,
            # and a loop over them in Python took a tenth of a compaction's time.
            _merge(self.by_type, Counter(map(_TYPE, rows)))
            _merge(self.by_chat, Counter(map(_CHAT, rows)))
            self.last = max(self.last, max(map(_SEQ, rows)))  # noqa: PLW3301 - no unpacking
        self._chunk(len(rows), held)

    def add_counted(self, groups: list[tuple[str, str, int, int]], held: float) -> None:
        """``groups``: ``(type, chat, count, highest seq)`` of the events one chunk removed,
        counted by the database, so that the rows themselves never travel."""
        for kind, chat, count, top in groups:
            self.by_type[kind] = self.by_type.get(kind, 0) + count
            self.by_chat[chat] = self.by_chat.get(chat, 0) + count
            self.last = max(self.last, top)
        self._chunk(sum(count for _, _, count, _ in groups), held)

    def _chunk(self, rows: int, held: float) -> None:
        self.removed += rows
        if self._progress is not None:
            self._progress(Chunk(self.removed, held))

    def marker(self, reason: CompactReason, selection: Selection) -> Compacted | None:
        """The ``Compacted`` saying what went (and by which rule); None when nothing did."""
        if not self.by_type:
            return None
        return Compacted.of(
            reason,
            self.by_type,
            self.last,
            older_than=selection.older_than,
            chats=selection.chats,
            seqs=selection.seqs,
            keep=selection.keep,
            by_chat=self.by_chat,
        )


class Pending(msgspec.Struct, kw_only=True):
    """A compaction under way, as the log stores it beside its events (table ``compactions``).

    Written by the transaction of the first chunk that removes anything (a
    forget of chats: before, see ``announces``) and updated by every later
    one, so what went and what the log says went never part: the marker is
    made from it, in the transaction that removes it. A failure before (a
    full disk, kill -9, a lost connection) leaves it behind, and whoever
    opens the log to compact, or the daemon starting, finishes it
    (``LogWriter.finish_compactions``): the rest goes, then its one marker.
    Anyone may finish it, even while its first runner still runs: each chunk
    adds what it removed under the row's lock, and only one transaction can
    turn the row into the marker. ``key`` is the marker's idempotency key, by
    which a runner that lost that race finds the marker.
    """

    token: str
    reason: CompactReason
    selection: Selection
    top: int  # only events up to this seq were there to select
    upto: int = 0  # every selected event up to this seq is gone
    by_type: dict[str, int] = {}
    by_chat: dict[str, int] = {}
    last: int = 0  # the highest seq removed

    @classmethod
    def start(cls, reason: CompactReason, selection: Selection, top: int) -> Pending:
        return cls(token=secrets.token_hex(8), reason=reason, selection=selection, top=top)

    @property
    def key(self) -> str:
        return f"compacted/{self.token}"

    def add(self, rows: list[tuple[int, str, str]], upto: int) -> None:
        """``rows``: the ``(seq, type, chat)`` a chunk removed, every one up to ``upto``."""
        if rows:
            _merge(self.by_type, Counter(map(_TYPE, rows)))
            _merge(self.by_chat, Counter(map(_CHAT, rows)))
            self.last = max(self.last, max(map(_SEQ, rows)))  # noqa: PLW3301 - no unpacking
        self.upto = max(self.upto, upto)

    def add_counted(self, groups: list[tuple[str, str, int, int]], upto: int) -> None:
        """``groups``: ``(type, chat, count, highest seq)`` a chunk removed, up to ``upto``."""
        for kind, chat, count, top in groups:
            self.by_type[kind] = self.by_type.get(kind, 0) + count
            self.by_chat[chat] = self.by_chat.get(chat, 0) + count
            self.last = max(self.last, top)
        self.upto = max(self.upto, upto)

    def marker(self) -> Compacted | None:
        """The ``Compacted`` saying all that went; None when nothing did."""
        tally = Tally()
        tally.by_type, tally.by_chat, tally.last = self.by_type, self.by_chat, self.last
        return tally.marker(self.reason, self.selection)

    def encode(self) -> str:
        return _PENDING_ENCODER.encode(self).decode()

    @classmethod
    def decode(cls, text: str | bytes) -> Pending:
        return _PENDING_DECODER.decode(text)


_PENDING_ENCODER = msgspec.json.Encoder(order="sorted")
_PENDING_DECODER = msgspec.json.Decoder(Pending)

# Runs ``pending`` (stored under the id, None: not yet stored) to its marker.
Run = Callable[[Pending, int | None, Progress | None], Recorded | None]


class Running:
    """The ids of the compactions this process runs: not left over, whatever the table says."""

    def __init__(self) -> None:
        self._ids: set[int] = set()
        self._lock = threading.Lock()

    def add(self, row_id: int) -> None:
        with self._lock:
            self._ids.add(row_id)

    def discard(self, row_ids: Iterable[int]) -> None:
        with self._lock:
            self._ids.difference_update(row_ids)

    def __contains__(self, row_id: object) -> bool:
        with self._lock:
            return row_id in self._ids


def finish_left(
    stored: Iterable[tuple[int, str]], running: Running, run: Run
) -> list[tuple[Pending, Recorded]]:
    """Run to its marker each stored compaction ``(id, state)`` no thread here runs."""
    done: list[tuple[Pending, Recorded]] = []
    for row_id, state in stored:
        if row_id in running:
            continue
        pending = Pending.decode(state)
        recorded = run(pending, row_id, None)
        if recorded is not None:
            done.append((pending, recorded))
    return done


def answer(
    own: Recorded | None,
    finished: list[tuple[Pending, Recorded]],
    reason: CompactReason,
    selection: Selection,
) -> Recorded | None:
    """What ``compact`` returns: its own marker; when it found nothing left, that of the
    same compaction it finished first (a failed ``forget`` or ``compact`` run again).

    The same: of the same reason and selection, or any rotation. A rotation run again
    selects by a later cut-off (``older_than`` is its ``now`` less the retention), so
    its selection never equals the one that failed, though the rule is the same: the
    user who ran ``compact`` again must hear what that rotation removed, not "nothing".
    """
    if own is not None:
        return own
    same = (r for p, r in finished if _same(p, reason, selection))
    return next(same, None)


def _same(pending: Pending, reason: CompactReason, selection: Selection) -> bool:
    if pending.reason != reason:
        return False
    return reason == "rotation" or pending.selection == selection


def _merge(into: dict[str, int], counts: Counter[str]) -> None:
    for key, n in counts.items():
        into[key] = into.get(key, 0) + n


def removed(
    selection: Selection,
    reason: CompactReason,
    rows: list[tuple[int, str, str]],
    progress: Progress | None = None,
) -> Compacted | None:
    """The marker for ``rows`` removed in one go (a backend without chunks, or a test)."""
    tally = Tally(progress)
    if rows:
        tally.add(rows, 0.0)
    return tally.marker(reason, selection)


def announces(reason: CompactReason, selection: Selection) -> bool:
    """Whether a compaction records that it is under way before it removes anything: a
    forget of chats, which fixes its ``top`` and adds its row in one transaction, so
    that a guarded append (``Guard``) either commits before (and goes with the chat)
    or finds the row and is refused."""
    return reason == "forget" and selection.chats is not None


def forgets(guard: Guard, markers: Iterable[Compacted], under_way: Iterable[Pending]) -> bool:
    """Whether ``guard`` refuses its append, given the markers recorded after its ``seen``
    and the compactions under way: the one rule of every backend."""
    return any(guard.refuses(m.reason, m.chats) for m in markers) or any(
        guard.refuses(p.reason, p.selection.chats) for p in under_way
    )
