"""When the daemon's loops look again, and who works on which chat: written once.

Every loop of the daemon is woken by each commit that changes what it reads
(``FoldedLog.waker``), so it acts the moment the log says there is something
to do, and sleeps through the commits that cannot concern it; the poll
interval is only a fallback, and a loop that knows when its next thing falls due (a
debounce deadline, a retry, a check-in) sleeps until then at the latest.
A pass that fails (the database away, a full disk, a bug) is logged once,
not once per wake-up (``_failures``), and the loop tries again at the next
one: whatever broke, the daemon stays up. A chat's worker that fails is not
started again at once (its end wakes the loop: the same step would fail
again in a tight loop, burning a core): the chat rests 1 s, then 2, 4… up
to 5 minutes after each failure in a row, logged once (again only should
the error change); the other chats go on meanwhile. A chat that goes 5
minutes past its rest without failing again (it had no work left, or left
the config) is forgotten: its next failure counts from 1 and is logged again.

The agent and the sender work chats: ``Dispatcher.run`` starts one worker per
chat with work (each chat's work stays in log order, different chats go
concurrently up to an optional limit), keeps the busy set, the chats that
must not be looked at before a due time, and lets shutdown wait until no
chat is being worked on. A worker that ends wakes the loop too: it may have
set the due time the next pass sleeps to, or freed a place. The scheduler and
the alerter do one thing at a time and run on ``Dispatcher.repeat``: the same
waking and guard, no workers.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, NamedTuple

import anyio
import structlog

from pipeline.daemon._failures import Failures
from pipeline.daemon._folded_log import FoldedLog
from pipeline.daemon._settings import Settings
from projections.base import Projection

Job = Callable[[], Awaitable[None]]

# How long a chat whose worker failed rests before the next try, by failures in a row.
CHAT_RETRY = tuple(min(2.0**n, 300.0) for n in range(10))  # 1, 2, 4 … 256, 300 s


class Pass(NamedTuple):
    """What one look at the view found: a worker to start per chat, and when to look
    again at the latest besides the chats' due times (inf: at the next wake-up)."""

    jobs: Sequence[tuple[str, Job]]
    wake: float = math.inf


def rest_forgotten(until: float, now: float) -> bool:
    """A rest over for as long as the longest one: the chat went that long without
    failing again (no work, or it left the config), so its failures in a row are over."""
    return now - until > CHAT_RETRY[-1]


def backoff(delays: Sequence[float], attempt: int) -> float:
    """The wait before try ``attempt + 1``, after ``attempt`` failed ones (the last
    delay repeats)."""
    return delays[min(attempt - 1, len(delays) - 1)]


class Dispatcher:
    def __init__(
        self,
        folded: FoldedLog,
        settings: Settings,
        log: structlog.stdlib.BoundLogger,
        failed: str,
        *,
        clock: Callable[[], float],
        limited: bool = False,
        reads: Iterable[Projection[Any]] | None = None,
    ) -> None:
        """``failed``: the event a failed pass is logged as; ``limited``: at most
        ``polling.max_concurrent_chats`` chats are worked on at once (as in force at
        each pass); ``reads``: the projections a pass reads, whose commits wake it
        (None: every commit). ``polling.interval_seconds`` is the fallback."""
        self.clock = clock
        self.busy: set[str] = set()  # chats a worker is on
        self.stopping = False  # ``run`` starts no worker once set, and returns when idle
        self._settings = settings
        polling = settings.app.polling
        self._limiter = anyio.CapacityLimiter(polling.max_concurrent_chats) if limited else None
        self._due: dict[str, float] = {}  # chats not to be looked at before then
        # Chats whose worker failed: failures in a row, and when to try again.
        self._resting: dict[str, tuple[int, float]] = {}
        # asyncio's own Event, as the workers are bare asyncio tasks: a new one
        # after every job, and anyio's wrapper costs a backend lookup each time.
        self._idle = asyncio.Event()
        self._workers: set[asyncio.Task[None]] = set()
        self._waker = folded.waker(reads)
        self._pass_failures = Failures(log, failed)
        self._chat_failures = Failures(log, "chat_work_failed")

    def ready(self, chat: str, now: float) -> bool:
        """No worker is on ``chat`` and it is not waiting for a due time (its own,
        or the rest after a failed worker)."""
        return (
            chat not in self.busy and self._due.get(chat, 0.0) <= now and not self._rests(chat, now)
        )

    def held(self, now: float) -> frozenset[str]:
        """The chats a worker is on or that rest after a failed one: none to start."""
        return frozenset(self.busy | {c for c in self._resting if self._rests(c, now)})

    def _rests(self, chat: str, now: float) -> bool:
        resting = self._resting.get(chat)
        return resting is not None and resting[1] > now

    def defer(self, chat: str, until: float) -> None:
        """Look at ``chat`` again at ``until`` (the loop sleeps until then at most)."""
        self._due[chat] = until

    def undefer(self, chat: str) -> None:
        self._due.pop(chat, None)

    def wake(self) -> None:
        """Look again now (something the next pass reads changed outside the log)."""
        self._waker.wake()

    async def run(self, look: Callable[[float], Pass]) -> None:
        """Until ``stopping``: look at every wake-up, start the workers ``look`` asks for."""
        try:
            while not self.stopping:
                wake = math.inf
                looked = self.clock()
                with self._pass_failures.guard():
                    wake = self._start(look(looked))
                await self._waker.wait(self._sleep(wake, looked))
            await self.idle()
        finally:
            await _cancelled(self._workers)

    async def once(self, look: Callable[[float], Pass]) -> None:
        """One look now; returns when no chat is being worked on (``run``'s included)."""
        running = set(self._workers)
        try:
            self._start(look(self.clock()))
            await self.idle()
        finally:
            await _cancelled(self._workers - running)

    async def repeat(self, step: Callable[[], Awaitable[float]]) -> None:
        """Forever: ``step`` at every wake-up, awaited; it returns when it is due next."""
        while True:
            wake = math.inf
            with self._pass_failures.guard():
                wake = await step()
            await self._waker.wait(min(self._poll(), wake - self.clock()))

    def _poll(self) -> float:
        return self._settings.app.polling.interval_seconds

    async def idle(self) -> None:
        """Wait until no chat is being worked on."""
        while self.busy:
            await self._idle.wait()

    def _start(self, found: Pass) -> float:
        if self._limiter is not None:
            self._limiter.total_tokens = self._settings.app.polling.max_concurrent_chats
        loop = asyncio.get_running_loop()
        now = self.clock()
        for chat, job in found.jobs:
            if chat in self.busy or self._rests(chat, now):
                # Never twice at once, nor before its rest is over, whatever ``look`` asks.
                continue
            self.busy.add(chat)
            # A bare asyncio task per job, not a task group's (the daemon's loop is
            # always asyncio, for neonize): two or three start for every message,
            # and anyio's bookkeeping cost more than the job's own scheduling.
            worker = loop.create_task(self._work(chat, job))
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)
        return found.wake

    def _sleep(self, wake: float, looked: float) -> float:
        """Until the pass's wake time or the next chat's due time; the poll at most.
        ``looked``: the time the pass just made looked at."""
        now = self.clock()
        # A due time the pass saw passed, of a chat no worker is on: it found no work
        # there (its messages went before then: a forget), or it would have started one.
        # Kept, it would wake the loop at once, again and again, and stay for good. One
        # that passed only while the pass looked (after ``looked``) was not seen: it stays,
        # and wakes the loop at once, or the chat would wait for the poll.
        for chat in [c for c, at in self._due.items() if at <= looked and c not in self.busy]:
            del self._due[chat]
        upcoming = [at for chat, at in self._due.items() if chat not in self.busy]
        self._forget_rests(now)
        # A rest still ahead only: one over, of a chat with no work left, would wake the
        # loop at once, again and again (its failures in a row are kept for the next one,
        # until ``rest_forgotten``).
        upcoming += [at for chat, (_, at) in self._resting.items() if at > now]
        return min(self._poll(), min([wake, *upcoming]) - now)

    def _forget_rests(self, now: float) -> None:
        """Drop the rests long over, or one entry would stay for every chat that ever failed.
        Not a busy chat's: its worker, under way, may fail again and rest longer."""
        for chat, (_, until) in list(self._resting.items()):
            if chat not in self.busy and rest_forgotten(until, now):
                del self._resting[chat]
                self._chat_failures.forget(chat=chat)

    async def _work(self, chat: str, job: Job) -> None:
        try:
            failed = True
            with self._chat_failures.guard(chat=chat):
                if self._limiter is None:
                    await job()
                else:
                    async with self._limiter:
                        await job()
                failed = False
            if failed:
                attempts = self._resting.get(chat, (0, 0.0))[0] + 1
                self._resting[chat] = (attempts, self.clock() + backoff(CHAT_RETRY, attempts))
            else:
                self._resting.pop(chat, None)
        finally:
            self.busy.discard(chat)
            self._idle.set()
            self._idle = asyncio.Event()
            self._waker.wake()


async def _cancelled(workers: set[asyncio.Task[None]]) -> None:
    """What a task group's exit does: cancel the workers still running, wait for them."""
    if not workers:
        return
    for worker in workers:
        worker.cancel()
    with anyio.CancelScope(shield=True):
        await asyncio.wait(list(workers))
