"""The log as the daemon lives it: appends off the event loop, projections kept current.

Appends run in a worker thread so a slow fsync never stalls the loop, and
concurrent appends from different chats group-commit in the log. After each
append the projections are caught up on the loop thread, so whoever appended
sees the consequences at once; the runner is only ever touched from the loop.
Every commit, from whichever thread, wakes each ``Waker`` handed out here,
and so does a refold's swap.

A compaction is absorbed by the projections as it is caught up. Only a marker
recorded by an older version (it does not say what went) needs the log
refolded: ``keep_current`` does that in a worker thread while the loop goes
on answering from the old view, then swaps the new states in and catches up
the tail on the loop.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

import anyio
import anyio.to_thread

from events.model import AnyEvent, Recorded
from events.protocol import Keyed, LogError, LogWriter
from pipeline.logs import get_logger
from projections.fold import States
from projections.runner import Runner

# A start after a crash refolds from the last snapshot: keep that tail short.
SNAPSHOT_EVERY = 10_000
RETRY_REFOLD = 60.0  # seconds before a failed refold is tried again

log = get_logger("wabot.live")


class Waker:
    """Wakes one loop on commits and nudges; a wake-up between two waits is never lost."""

    def __init__(self) -> None:
        self._event = anyio.Event()
        self._due = False

    def wake(self) -> None:
        """Call on the event loop thread."""
        self._due = True
        self._event.set()

    async def wait(self, timeout: float) -> None:
        """Return at the next wake-up (at once if one came since the last wait), or on timeout."""
        if not self._due:
            with anyio.move_on_after(max(0.0, timeout)):
                await self._event.wait()
        self._due = False
        self._event = anyio.Event()


class Live:
    def __init__(self, log: LogWriter, *, snapshot_every: int = SNAPSHOT_EVERY) -> None:
        self.log = log
        self._runner = Runner.start(log, refold=False)
        self._wakers: list[Waker] = []
        self._unsubscribe: Callable[[], None] | None = None
        self._snapshot_every = snapshot_every
        self._snapshot_seq = self._runner.seq
        self._reported = self._runner.seq  # the last record catch_up returned
        self._went_stale: Waker | None = None

    @property
    def view(self) -> States:
        """Every projection's state as of the last catch-up."""
        return self._runner.states

    async def append(self, *items: AnyEvent | Keyed) -> list[Recorded]:
        recs = await anyio.to_thread.run_sync(self.log.append, *items)
        self.catch_up()
        return recs

    @property
    def stale(self) -> bool:
        """Whether ``view`` may still hold facts a compaction removed (a refold is due)."""
        return self._runner.stale

    def catch_up(self) -> list[Recorded]:
        """Fold what was appended since; returns the records not returned before."""
        new = [r for r in self._runner.catch_up(refold=False) if r.seq > self._reported]
        if new:
            self._reported = new[-1].seq
        if self._runner.stale and self._went_stale is not None:
            self._went_stale.wake()
        if self._runner.seq - self._snapshot_seq >= self._snapshot_every:
            self._runner.snapshot(self.log)  # not while stale
            self._snapshot_seq = self._runner.seq
        return new

    async def keep_current(self) -> None:
        """Run for the daemon's life: refold whenever the view went stale."""
        self._went_stale = Waker()
        while True:
            if not self._runner.stale:
                await self._went_stale.wait(math.inf)
                continue
            try:
                await self.refold()
            except LogError as exc:
                # The old view serves on; the next commit or a minute brings another try.
                log.warning("refold_failed", error=str(exc))
                await self._went_stale.wait(RETRY_REFOLD)

    async def refold(self) -> None:
        """Fold the whole log in a worker thread, serving the old view meanwhile; then swap."""
        fresh = await anyio.to_thread.run_sync(Runner.refolded, self.log)
        self._runner = fresh
        self._snapshot_seq = min(self._snapshot_seq, fresh.seq)
        self.catch_up()  # the tail appended while the worker folded
        self._wake_all()  # the view changed: whoever waits on it looks again

    def waker(self) -> Waker:
        """A waker woken by every commit from now on."""
        waker = Waker()
        self._wakers.append(waker)
        return waker

    def watch(self) -> None:
        """Start waking on commits; call once, on the running event loop."""
        # neonize needs asyncio, so the daemon always runs anyio's asyncio backend;
        # call_soon_threadsafe never blocks the committing thread.
        loop = asyncio.get_running_loop()

        def committed(_seq: int) -> None:
            loop.call_soon_threadsafe(self._wake_all)

        self._unsubscribe = self.log.subscribe(committed)

    def _wake_all(self) -> None:
        for waker in self._wakers:
            waker.wake()

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._runner.snapshot(self.log)
        self.log.close()
