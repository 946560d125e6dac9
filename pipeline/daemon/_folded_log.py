"""The log as the daemon lives it: no append waits on the loop, projections kept current.

Appends run in a worker thread so a slow fsync or a taken lock never stalls
the loop, and concurrent appends from different chats group-commit in the
log. A log that can commit without waiting (SQLite with ``synchronous=NORMAL``,
its write lock free: ``append_now``) commits on the loop instead: a thread
hand-off costs more than such a commit (its write to the WAL is the one thing
that can still hold the loop up, when the disk is flushing hard). Each commit
is folded once, from the records the append returned: nothing this process
writes is read back (or decoded again). Records that come back out of order
(two appends committed in one order, returned in the other) wait until the
ones before them are in; a commit whose records never come back (an append
abandoned on a timeout) and what other processes write are read from the
log: at the next fold that finds a gap, and every poll interval
(``keep_current``). The runner is only ever touched from the loop. Every fold
wakes each ``Waker`` handed out here whose loop reads what it changed (a
waker names the projections its loop reads; one that names none wakes at
every fold), and a refold's swap wakes them all.

A compaction is absorbed by the projections as it is caught up. Only a marker
recorded by an older version (it does not say what went) needs the log
refolded: ``keep_current`` does that in a worker thread while the loop goes
on answering from the old view, then swaps the new states in and catches up
the tail on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import threading
from collections.abc import Callable, Iterable
from typing import Any

import anyio
import anyio.to_thread

from events.model import EVENT_TYPES, AnyEvent, Compacted, Event, Recorded
from events.protocol import AppendsNow, Guard, Keyed, LogError, LogWriter
from pipeline.daemon._failures import Failures
from pipeline.logs import get_logger
from projections.base import Projection
from projections.fold import States
from projections.runner import Runner

# A start after a crash refolds from the last snapshot: keep that tail short.
SNAPSHOT_EVERY = 10_000
RETRY_REFOLD = 60.0  # seconds before a failed refold is tried again

_logger = get_logger("wabot.log")


class Waker:
    """Wakes one loop on commits and nudges; a wake-up between two waits is never lost."""

    def __init__(self, reads: frozenset[type[Event]] | None = None) -> None:
        """``reads``: the event types whose commits wake it (None: every commit)."""
        self.reads = reads
        # asyncio's own Event (the loop is always asyncio): a loop waits again after
        # every commit, and anyio's wrapper costs a few calls more each time.
        self._event = asyncio.Event()
        self._due = False

    @property
    def due(self) -> bool:
        """Whether a wake-up came since the last wait."""
        return self._due

    def wake(self) -> None:
        """Call on the event loop thread."""
        self._due = True
        self._event.set()

    async def wait(self, timeout: float) -> None:
        """Return at the next wake-up (at once if one came since the last wait), or on timeout."""
        if not self._due:
            # A timer that sets the event, not a cancel scope: the loops wait again
            # after every commit, and a scope costs several times as much.
            timer = None
            if timeout < math.inf:
                timer = asyncio.get_running_loop().call_later(max(0.0, timeout), self._event.set)
            try:
                await self._event.wait()
            finally:
                if timer is not None:
                    timer.cancel()
        self._due = False
        self._event = asyncio.Event()


def _finish_compactions(log: LogWriter) -> None:
    """Before the fold: a compaction a failure left (a forget on a full disk) records its
    marker. Should that fail too, the daemon starts all the same: what went is gone from
    the log and from every snapshot already, and the next rotation tries again."""
    try:
        finished = log.finish_compactions()
    except LogError as exc:
        _logger.warning("compaction_unfinished", error=str(exc))
        return
    for marker in finished:
        if isinstance(marker.event, Compacted):
            _logger.info(
                "compaction_finished",
                reason=marker.event.reason,
                removed=marker.event.removed,
                seq=marker.seq,
            )


class FoldedLog:
    def __init__(self, log: LogWriter, *, snapshot_every: int = SNAPSHOT_EVERY) -> None:
        self.log = log
        self._append_now = log.append_now if isinstance(log, AppendsNow) else None
        _finish_compactions(log)
        self._runner = Runner.start(log, refold=False)
        self._wakers: list[Waker] = []
        self._landed: set[type[Event]] = set()  # the event types folded since the last wake
        self._unsubscribe: Callable[[], None] | None = None
        self._snapshot_every = snapshot_every
        self._snapshot_seq = self._runner.seq
        self._reported = self._runner.seq  # the last record catch_up returned
        self._went_stale: Waker | None = None
        # The highest seq this process committed (set from the committing thread),
        # the appends whose records have not come back yet, and records that came
        # back before an earlier one.
        self._committed = self._runner.seq
        self._inflight = 0
        self._early: dict[int, Recorded] = {}
        self._closed = False
        self._poll_failures = Failures(_logger, "log_poll_failed")

    @property
    def view(self) -> States:
        """Every projection's state as of the last catch-up."""
        return self._runner.states

    def guard(self, *chats: str) -> Guard:
        """The condition of an append decided from ``view`` about ``chats``: refused
        (``Forgotten``) should a ``forget`` of one of them come after what it read."""
        return Guard(frozenset(chats), self._runner.seq)

    async def append(
        self, *items: AnyEvent | Keyed, guard: Guard | None = None, abandon_on_cancel: bool = False
    ) -> list[Recorded]:
        """Append (on the loop if that cannot wait, else in a worker thread) and
        fold the records it returns.

        ``guard``: see ``Guard``; a refusal raises ``Forgotten`` with nothing written.
        ``abandon_on_cancel``: a cancelled wait leaves the append running in
        its thread; if it commits, the records are read from the log later.
        """
        if self._append_now is not None:
            recs = self._append_now(*items, guard=guard)
            if recs is not None:
                self._folded_own(recs)
                return recs
        self._inflight += 1
        try:
            recs = await anyio.to_thread.run_sync(
                functools.partial(self.log.append, *items, guard=guard),
                abandon_on_cancel=abandon_on_cancel,
            )
        except BaseException:
            self._inflight -= 1
            # Already committed (its callback found us still waiting): read it now.
            # Not committed yet (the database may be away): its callback will.
            if self._inflight == 0 and self._committed > self._runner.seq:
                self._settle()
                self._wake_all()
            raise
        self._inflight -= 1
        self._folded_own(recs)
        return recs

    def _folded_own(self, recs: list[Recorded]) -> None:
        self.fold(recs)
        if recs and self._runner.seq < recs[-1].seq:
            # Held back by an earlier commit whose append has not returned yet: read
            # it now, since whoever appended acts on the view next (the agent asks
            # the queue what is still pending) and must see its own records.
            with contextlib.suppress(LogError):
                self.catch_up()
            self._wake_all()

    def fold(self, recs: list[Recorded]) -> None:
        """Fold records this process appended, in seq order; wake everyone waiting."""
        seq = self._runner.seq
        for rec in recs:
            if rec.seq > seq:  # an existing key's slot holds an event folded long ago
                self._early[rec.seq] = rec
        run: list[Recorded] = []
        while (nxt := self._runner.seq + len(run) + 1) in self._early:
            run.append(self._early.pop(nxt))
        if run:
            self._runner.apply(run)
            self._folded(run)
        self._settle()
        self._wake_all()

    def _settle(self) -> None:
        """Read the commits no append of ours will bring back (abandoned appends, other
        processes' records in a gap), once no append is waiting for its records."""
        if self._inflight == 0 and (self._early or self._committed > self._runner.seq):
            with contextlib.suppress(LogError):  # the poll reads them later
                self.catch_up()

    @property
    def stale(self) -> bool:
        """Whether ``view`` may still hold facts a compaction removed (a refold is due)."""
        return self._runner.stale

    def catch_up(self) -> list[Recorded]:
        """Read and fold what was appended since, by anyone; returns the records not
        returned before (a read of the log: the daemon's loops never need one)."""
        new = self._runner.catch_up(refold=False)
        self._early = {s: r for s, r in self._early.items() if s > self._runner.seq}
        return self._folded(new)

    def refresh(self) -> None:
        """Read what other processes appended before a decision that must not outlive
        it (a ``forget`` while an LLM call was out), not at the next poll; the
        database away: the view as it stands, the poll reads it later."""
        with contextlib.suppress(LogError):
            if self.catch_up():
                self._wake_all()

    def _folded(self, recs: list[Recorded]) -> list[Recorded]:
        new = [r for r in recs if r.seq > self._reported]
        if new:
            self._reported = new[-1].seq
        self._landed.update(type(r.event) for r in recs)
        if self._runner.stale and self._went_stale is not None:
            self._went_stale.wake()
        if self._runner.seq - self._snapshot_seq >= self._snapshot_every:
            self._runner.snapshot(self.log)  # not while stale
            self._snapshot_seq = self._runner.seq
        return new

    async def snapshot(self) -> None:
        """Save the view as it is now (encoded on the loop, written in a worker thread).

        After the daemon's own compaction: the log dropped the snapshot folded
        before it (it held what went), and a start after a crash would otherwise
        fold the whole log again.
        """
        save = self._runner.frozen(self.log)
        if save is None:
            return  # stale: the refold's states are saved later
        seq = self._runner.seq
        await anyio.to_thread.run_sync(save)
        self._snapshot_seq = max(self._snapshot_seq, seq)

    async def keep_current(self, poll: Callable[[], float] = lambda: math.inf) -> None:
        """Run for the daemon's life: every ``poll()`` seconds read what other
        processes appended; refold whenever the view went stale."""
        self._went_stale = Waker()
        while True:
            if not self._runner.stale:
                await self._went_stale.wait(poll())
                with self._poll_failures.guard():  # the database away: the next poll
                    if not self._runner.stale and self.catch_up():
                        self._wake_all()
                continue
            try:
                await self.refold()
            except LogError as exc:
                # The old view serves on; the next commit or a minute brings another try.
                _logger.warning("refold_failed", error=str(exc))
                await self._went_stale.wait(RETRY_REFOLD)

    async def refold(self) -> None:
        """Fold the whole log in a worker thread, serving the old view meanwhile; then swap."""
        fresh = await anyio.to_thread.run_sync(Runner.refolded, self.log)
        self._runner = fresh
        self._snapshot_seq = min(self._snapshot_seq, fresh.seq)
        self.catch_up()  # the tail appended while the worker folded
        self._landed.update(EVENT_TYPES)
        self._wake_all()  # the view changed: whoever waits on it looks again

    def waker(self, reads: Iterable[Projection[Any]] | None = None) -> Waker:
        """A waker woken by every commit from now on that changes one of ``reads``
        (every commit: None). A compaction changes them all."""
        types = None if reads is None else frozenset(t for p in reads for t in p.handles)
        waker = Waker(types)
        self._wakers.append(waker)
        return waker

    def watch(self) -> None:
        """Start waking on commits; call once, on the running event loop."""
        # neonize needs asyncio, so the daemon always runs anyio's asyncio backend;
        # call_soon_threadsafe never blocks the committing thread.
        loop = asyncio.get_running_loop()
        loop_thread = threading.get_ident()

        def committed(seq: int) -> None:
            self._committed = max(self._committed, seq)
            if threading.get_ident() == loop_thread:
                # Committed on the loop itself (``append_now``): no need to write to
                # the loop's wake-up pipe, a syscall each way, on every commit.
                loop.call_soon(self._commit_landed)
            else:
                loop.call_soon_threadsafe(self._commit_landed)

        self._unsubscribe = self.log.subscribe(committed)

    def _commit_landed(self) -> None:
        """A commit of this process: its append folds it, unless none is waiting for one."""
        if not self._closed and self._inflight == 0 and self._committed > self._runner.seq:
            self._settle()
            self._wake_all()

    def _wake_all(self) -> None:
        """Wake every waker that reads what was folded since the last wake-up."""
        landed, self._landed = self._landed, set()
        for waker in self._wakers:
            if waker.reads is None or not waker.reads.isdisjoint(landed):
                waker.wake()

    def close(self) -> None:
        self._closed = True
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._runner.snapshot(self.log)
        self.log.close()
