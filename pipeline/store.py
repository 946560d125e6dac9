"""The daemon's view of the log: appends off the event loop, projections kept current.

Appends run in a worker thread so a slow fsync never stalls the loop, and
concurrent appends from different chats group-commit in the log. After each
append the projections are caught up on the loop thread, so whoever appended
sees the consequences at once; the runner is only ever touched from the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import anyio
import anyio.to_thread

from events.model import AnyEvent, Recorded
from events.protocol import Keyed, LogWriter
from projections.runner import Runner

# A start after a crash refolds from the last snapshot: keep that tail short.
SNAPSHOT_EVERY = 10_000


class Store:
    def __init__(
        self, log: LogWriter, runner: Runner, *, snapshot_every: int = SNAPSHOT_EVERY
    ) -> None:
        self.log = log
        self.view = runner
        self._wake: anyio.Event = anyio.Event()
        self._unsubscribe: Callable[[], None] | None = None
        self._snapshot_every = snapshot_every
        self._snapshot_seq = runner.seq

    async def append(self, *items: AnyEvent | Keyed) -> list[Recorded]:
        recs = await anyio.to_thread.run_sync(self.log.append, *items)
        self.catch_up()
        return recs

    def catch_up(self) -> list[Recorded]:
        new = self.view.catch_up()
        if self.view.seq - self._snapshot_seq >= self._snapshot_every:
            self.view.snapshot(self.log)
            self._snapshot_seq = self.view.seq
        return new

    def watch(self) -> None:
        """Wake ``changed()`` waiters on every commit, from whichever thread commits."""
        # neonize needs asyncio, so the daemon always runs anyio's asyncio backend;
        # call_soon_threadsafe never blocks the committing thread.
        loop = asyncio.get_running_loop()

        def poke(_seq: int) -> None:
            loop.call_soon_threadsafe(self._poke)

        self._unsubscribe = self.log.subscribe(poke)

    def _poke(self) -> None:
        self._wake.set()
        self._wake = anyio.Event()

    async def changed(self, timeout: float) -> None:
        """Return after the next commit, or after ``timeout`` (the poll fallback)."""
        wake = self._wake
        with anyio.move_on_after(timeout):
            await wake.wait()

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        self.view.snapshot(self.log)
        self.log.close()
