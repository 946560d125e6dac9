"""What every backend's compaction shares: chunks sized by time, and the tally behind the marker.

A compaction removes events in many short transactions so appends interleave
with it. How many rows fit in one is not known in advance (a row's indexes,
the disk, the machine's load), so ``Pacer`` sizes each chunk from how long the
last took, aiming at ``TARGET`` seconds: long enough that a chunk's fixed cost
is small, short enough that an append waiting behind it is never late.
"""

from __future__ import annotations

from collections import Counter
from operator import itemgetter

from events.model import Compacted
from events.protocol import Chunk, CompactReason, Progress, Selection

__all__ = ["TARGET", "Pacer", "Tally", "removed"]

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
