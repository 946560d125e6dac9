"""Receipts for the bot's own messages: each filed under the reply it reports on, or dropped.

A receipt names WhatsApp message ids only. It is recorded (``ReplyDelivered``,
keyed so a repeat is a no-op) when the id is one the bot sent (the
deliveries projection), under that reply's chat. WhatsApp may report a
message before the sender has recorded it as sent (the send returns, the
receipt overtakes the append), so a receipt that matches no send yet waits
here, in memory, for up to ``PARK_SECONDS`` and is tried again after every
commit. A receipt of anything else (the owner's own messages from the phone,
chats that are not monitored) is dropped then, unseen: nothing of it is
stored or logged.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Awaitable, Callable

import msgspec

from events.model import AnyEvent, ReplyDelivered
from events.protocol import Keyed
from pipeline.daemon._folded_log import FoldedLog
from projections import deliveries

PARK_SECONDS = 60.0
MAX_PARKED = 1000  # beyond this the oldest waiting receipt is dropped

Record = Callable[[AnyEvent | Keyed], Awaitable[None]]


class Receipts:
    def __init__(self, folded: FoldedLog, record: Record, *, clock: Callable[[], float]) -> None:
        self.folded = folded
        self.dropped = 0  # receipts of messages the bot did not send: counted, never stored
        self._record = record
        self._clock = clock
        self._parked: deque[tuple[float, ReplyDelivered]] = deque()
        self._waker = folded.waker([deliveries.PROJECTION])  # a send recorded may match

    async def deliver(self, receipt: ReplyDelivered) -> None:
        keyed = self._match(receipt)
        if keyed is not None:
            await self._record(keyed)
            return
        if len(self._parked) >= MAX_PARKED:
            self._parked.popleft()
            self.dropped += 1
        self._parked.append((self._clock(), receipt))

    async def run(self) -> None:
        """Match the waiting receipts again after each commit; drop them when too old."""
        while True:
            await self._waker.wait(PARK_SECONDS if self._parked else math.inf)
            if self._parked:  # the fold that woke us may hold their ReplySent
                await self.retry()

    async def retry(self) -> None:
        now = self._clock()
        parked, self._parked = self._parked, deque()
        for since, receipt in parked:
            keyed = self._match(receipt)
            if keyed is not None:
                await self._record(keyed)
            elif now - since < PARK_SECONDS:
                self._parked.append((since, receipt))
            else:
                self.dropped += 1

    def _match(self, receipt: ReplyDelivered) -> Keyed | None:
        sent = deliveries.find(self.folded.view.deliveries, receipt.wa_id)
        if sent is None:
            return None
        fact = msgspec.structs.replace(receipt, chat=sent.chat, reply_id=sent.reply_id)
        return Keyed(fact, f"{sent.chat}/{receipt.wa_id}/receipt/{receipt.state}")
