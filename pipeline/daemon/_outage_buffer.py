"""What WhatsApp hands over while the log cannot take it: held in memory, appended in order later.

WhatsApp acknowledges a message once it is delivered to the bot and does not
send it again, so a message the log cannot record at once must not be dropped.
An append that has not finished within ``HOLD_AFTER`` seconds (the database is
away and the log is waiting for it) or that fails leaves the fact here, and so
does every fact after it while any is held, so order is kept and the transport
never stalls. ``run`` appends the held facts, oldest first, retrying with
backoff until the log takes them. Messages carry their idempotency keys, so a
fact whose first append did commit in the end is not recorded twice.

Bounded: beyond ``MAX_HELD`` facts (hours of a busy account) new ones are
dropped with an error line each. Held facts live in memory only: if the
process ends before the database returns, they are lost (said in one line).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque

import anyio

from events.model import AnyEvent
from events.protocol import Keyed, LogError
from pipeline.daemon._folded_log import FoldedLog
from pipeline.logs import get_logger

log = get_logger("wabot.daemon")

MAX_HELD = 10_000
HOLD_AFTER = 2.0  # seconds an inbound append may take before its fact is held instead
_CHUNK = 100  # held facts appended per commit
_PAUSES = (0.5, 1.0, 2.0, 5.0)  # between failed attempts to append held facts


def _chat(item: AnyEvent | Keyed) -> str:
    return (item.event if isinstance(item, Keyed) else item).chat


class OutageBuffer:
    def __init__(self, folded: FoldedLog) -> None:
        self.folded = folded
        self.lost = 0  # facts dropped because too many were held
        self._items: deque[AnyEvent | Keyed] = deque()
        self._more = anyio.Event()

    @property
    def held(self) -> int:
        return len(self._items)

    async def record(self, item: AnyEvent | Keyed) -> None:
        """Append ``item`` now, or hold it when the log cannot take it in time."""
        if not self._items:
            try:
                # asyncio's timeout (a loop timer), not an anyio cancel scope: one
                # runs for every inbound message, and the scope cost several times more.
                async with asyncio.timeout(HOLD_AFTER):
                    # Abandoned on timeout: the append goes on in its thread and
                    # may still commit; the held copy is then a no-op by its key.
                    await self.folded.append(item, abandon_on_cancel=True)
            except (TimeoutError, LogError) as exc:
                log.warning("log_unavailable_holding", error=str(exc) or "append timed out")
            else:
                return
        self._hold(item)

    def _hold(self, item: AnyEvent | Keyed) -> None:
        if len(self._items) >= MAX_HELD:
            self.lost += 1
            log.error("message_not_recorded", chat=_chat(item), reason=f"{MAX_HELD} facts held")
            return
        self._items.append(item)
        self._more.set()

    async def run(self) -> None:
        """Append held facts whenever there are some; forever."""
        try:
            while True:
                await self._more.wait()
                self._more = anyio.Event()
                await self._drain()
        finally:
            if self._items:
                log.error("held_facts_not_recorded", count=len(self._items))

    async def _drain(self) -> None:
        recorded, failures = 0, 0
        while self._items:
            chunk = list(itertools.islice(self._items, _CHUNK))
            try:
                await self.folded.append(*chunk, abandon_on_cancel=True)
            except LogError as exc:
                if failures == 0:
                    log.warning("held_facts_waiting", held=len(self._items), error=str(exc))
                await anyio.sleep(_PAUSES[min(failures, len(_PAUSES) - 1)])
                failures += 1
                continue
            for _ in chunk:
                self._items.popleft()
            recorded += len(chunk)
        log.warning("held_facts_recorded", count=recorded)
