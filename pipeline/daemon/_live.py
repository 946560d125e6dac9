"""The log as the daemon lives it: appends off the event loop, projections kept current.

Appends run in a worker thread so a slow fsync never stalls the loop, and
concurrent appends from different chats group-commit in the log. After each
append the projections are caught up on the loop thread, so whoever appended
sees the consequences at once; the runner is only ever touched from the loop.
Every commit, from whichever thread, wakes each ``Waker`` handed out here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import anyio
import anyio.to_thread

from events.model import AnyEvent, Recorded
from events.protocol import Keyed, LogWriter
from projections.fold import States
from projections.runner import Runner

# A start after a crash refolds from the last snapshot: keep that tail short.
SNAPSHOT_EVERY = 10_000


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
        self._runner = Runner.start(log)
        self._wakers: list[Waker] = []
        self._unsubscribe: Callable[[], None] | None = None
        self._snapshot_every = snapshot_every
        self._snapshot_seq = self._runner.seq

    @property
    def view(self) -> States:
        """Every projection's state as of the last catch-up."""
        return self._runner.states

    async def append(self, *items: AnyEvent | Keyed) -> list[Recorded]:
        recs = await anyio.to_thread.run_sync(self.log.append, *items)
        self.catch_up()
        return recs

    def catch_up(self) -> list[Recorded]:
        new = self._runner.catch_up()
        if self._runner.seq - self._snapshot_seq >= self._snapshot_every:
            self._runner.snapshot(self.log)
            self._snapshot_seq = self._runner.seq
        return new

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
