"""Keeps every projection current against the log: snapshot, then the tail.

A ``Compacted`` in the tail is absorbed: each projection drops what it derived
from the events that went, so a compaction costs no refold, at start-up (the
snapshot predates the marker) or while running. Only a marker that does not
say which events went (recorded by an older version) needs the compacted log
refolded: at once, or, with ``refold=False``, later by whoever owns the
runner (``stale``; the daemon refolds in a worker thread meanwhile).

Not thread-safe: one task owns a runner and calls ``catch_up`` when the log
says there is more.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import msgspec

from events.model import Recorded
from events.protocol import LogReader, LogWriter
from projections.base import Projection
from projections.fold import (
    ALL,
    SNAPSHOT_VERSION,
    States,
    absorbs,
    decode,
    dispatch_table,
    encode,
    feed,
)

SNAPSHOT_NAME = "projections"
Sink = Callable[[Iterator[Recorded]], Iterable[Recorded]]


@contextmanager
def _collector_paused() -> Iterator[None]:
    """A refold only builds long-lived state: rescanning it on every GC pass is waste."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _unchanged(records: Iterator[Recorded]) -> Iterator[Recorded]:
    return records


class Runner:
    """Every projection's state (``runner.states.queue``, ...) as of ``seq``."""

    def __init__(self, log: LogReader, projections: Sequence[Projection[Any]] = ALL) -> None:
        """An empty runner; ``start`` is the usual way to get one that is current."""
        self._log = log
        self._projections = tuple(projections)
        names = sorted(p.name for p in self._projections)
        # A snapshot only fits runners folding the same projections.
        full = names == sorted(p.name for p in ALL)
        self._snapshot_name = SNAPSHOT_NAME if full else f"{SNAPSHOT_NAME}:{'+'.join(names)}"
        self._absorbing = absorbs(self._projections)
        # Compactions at or below this seq happened before the current fold began.
        self._clean_upto = 0
        self._stale = False
        self._adopt(States())

    @classmethod
    def start(
        cls, log: LogReader, projections: Sequence[Projection[Any]] = ALL, *, refold: bool = True
    ) -> Runner:
        """Load the snapshot if there is a usable one, else fold from scratch; then catch up.

        ``refold=False``: a marker that needs a refold leaves the runner ``stale``.
        """
        runner = cls(log, projections)
        if runner._restore():
            runner._advance(_unchanged, refold=refold)
        else:
            runner._refold(_unchanged)
        return runner

    @classmethod
    def refolded(cls, log: LogReader, projections: Sequence[Projection[Any]] = ALL) -> Runner:
        """A runner folded from the start of the log, snapshot unused (a worker thread may call)."""
        runner = cls(log, projections)
        runner._refold(_unchanged)
        return runner

    @property
    def stale(self) -> bool:
        """Whether the states may hold facts a compaction removed: ``refolded`` replaces them."""
        return self._stale

    @property
    def seq(self) -> int:
        """The last log position folded."""
        return self._states.seq

    def catch_up(self, *, refold: bool = True) -> list[Recorded]:
        """Fold everything appended since ``seq``; returns those new records in order.

        A marker that does not say which events went means the folded state
        may include deleted facts: the states are rebuilt from the compacted
        log, or with ``refold=False`` folding goes on and the runner is ``stale``.
        """
        old = self.seq
        new: list[Recorded] = []

        def collect(records: Iterator[Recorded]) -> Iterator[Recorded]:
            new.clear()  # each pass (a refold reads the whole log again) starts over
            for rec in records:
                if rec.seq > old:
                    new.append(rec)
                yield rec

        self._advance(collect, refold=refold)
        return new

    def apply(self, records: Sequence[Recorded]) -> None:
        """Fold ``records`` the caller already holds (just appended), with no read.

        They must follow ``seq`` without a gap: whoever appended them knows
        (``FoldedLog.fold``); anything else goes through ``catch_up``. A marker that
        needs a refold leaves the runner ``stale``, as ``catch_up(refold=False)``.
        """
        if records and records[0].seq != self.seq + 1:
            raise ValueError(f"records from {records[0].seq} do not follow seq {self.seq}")
        self._feed(iter(records), sink=None)

    def snapshot(self, into: LogWriter) -> None:
        """Save every state and ``seq`` as one blob, so the next start skips the refold.

        Not while ``stale``: the next start would resume past the marker and never refold.
        """
        save = self.frozen(into)
        if save is not None:
            save()

    def frozen(self, into: LogWriter) -> Callable[[], None] | None:
        """``snapshot`` in two steps: the states encoded now, and the write of that blob
        into ``into``, which another thread may run while this one folds on. None
        while ``stale``."""
        if self._stale:
            return None
        row = (self._snapshot_name, SNAPSHOT_VERSION, self.seq, encode(self._states))
        return lambda: into.save_snapshot(*row)

    @property
    def states(self) -> States:
        """All states in one struct (shared, not a copy; replaced by a refold)."""
        return self._states

    def _adopt(self, states: States) -> None:
        self._states = states
        self._table = dispatch_table(states, self._projections)

    def _restore(self) -> bool:
        found = self._log.load_snapshot(self._snapshot_name, SNAPSHOT_VERSION)
        if found is None:
            return False
        seq, blob = found
        try:
            states = decode(blob)
        except msgspec.DecodeError:
            return False  # a cache of another shape: refold
        # A snapshot ahead of the log belongs to another (restored or reset) log.
        if states.seq != seq or seq > self._log.last_seq():
            return False
        self._adopt(states)
        return True

    def _advance(self, sink: Sink, *, refold: bool) -> None:
        self._feed(iter(sink(self._log.read(after=self.seq))), sink if refold else None)

    def _feed(self, records: Iterator[Recorded], sink: Sink | None) -> None:
        """Fold ``records``; at a marker that needs a refold, refold through ``sink``,
        or without one fold on and be ``stale``."""
        marker = feed(
            self._states, self._table, records, self._clean_upto, absorbing=self._absorbing
        )
        if marker is None:
            return
        if sink is not None:
            self._refold(sink)
            return
        self._stale = True
        feed(self._states, self._table, records)  # the rest of the same pass

    def _refold(self, sink: Sink) -> None:
        with _collector_paused():
            self._refold_all(sink)

    def _refold_all(self, sink: Sink) -> None:
        while True:
            self._adopt(States())
            self._clean_upto = self._log.last_seq()
            self._stale = False
            records = sink(self._log.read())
            if (
                feed(
                    self._states, self._table, records, self._clean_upto, absorbing=self._absorbing
                )
                is None
            ):
                return
