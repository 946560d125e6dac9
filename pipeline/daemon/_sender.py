"""The sender: delivers planned replies, in log order, and records the outcome.

It only ever sends what a committed ``ReplyPlanned`` names, and only until a
``ReplySent`` or final ``ReplyFailed`` is in the log; after a restart the
outbox projection hands it exactly the replies still owed. Like the agent it
wakes on every commit; the poll interval is only a fallback.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio

from events.model import ReplyFailed, ReplyPlanned, ReplySent
from pipeline.daemon._live import Live
from pipeline.daemon._settings import Settings
from pipeline.logs import get_logger
from pipeline.transport import Outgoing, Transport, TransportError
from projections import addresses, outbox

log = get_logger("wabot.sender")

MAX_ATTEMPTS = 5
_BACKOFF = (1.0, 2.0, 5.0, 15.0)
_READ_DEADLINE = 5.0


class Sender:
    def __init__(
        self,
        live: Live,
        transport: Transport,
        settings: Settings,
        *,
        clock: Callable[[], float],
    ) -> None:
        self.live = live
        self.transport = transport
        self.settings = settings
        self.clock = clock
        self._waker = live.waker()
        self._retry_at: dict[str, float] = {}
        # Shutdown drains while the run loop may be mid-pass: one pass at a time.
        self._lock = anyio.Lock()

    async def run(self) -> None:
        while True:
            try:
                await self.send_due()
            except Exception:
                # A failure to record an outcome must not stop later sends.
                log.exception("send_pass_failed")
            poll = self.settings.app.polling.interval_seconds
            waits = [at - self.clock() for at in self._retry_at.values()]
            await self._waker.wait(min([poll, *waits]))

    async def send_due(self) -> None:
        """Send every owed reply whose retry time has come."""
        async with self._lock:
            self.live.catch_up()
            for entry in outbox.unsent(self.live.view.outbox):
                if self._retry_at.get(entry.event.reply_id, 0.0) <= self.clock():
                    await self._send(entry)

    async def _send(self, entry: outbox.Entry) -> None:
        planned = entry.event
        view = self.live.view
        to = addresses.destination(
            view.addresses, planned.chat, self.settings.app.owner_jid, view.identity.me_lid
        )
        message = Outgoing(
            to=to,
            text=planned.text,
            wa_id=planned.wa_id,
            reply_to=planned.in_reply_to,
            purpose=planned.purpose,
            quoted=planned.quoted,
            part=planned.part,
            parts=planned.parts,
        )
        try:
            receipt = await self.transport.send(message)
        except TransportError as exc:
            await self._failed(entry, exc)
            return
        self._retry_at.pop(planned.reply_id, None)
        delivered = receipt.to or to
        await self.live.append(
            ReplySent(
                chat=planned.chat,
                reply_id=planned.reply_id,
                wa_id=receipt.wa_id,
                sent_at=receipt.sent_at,
                to=delivered if delivered != planned.chat else None,
            )
        )
        log.info("reply_sent", chat=planned.chat, purpose=planned.purpose, wa_id=receipt.wa_id)
        if self.settings.app.whatsapp.read_receipts and planned.part in (None, 1):
            await self._mark_read(planned, to)

    async def _failed(self, entry: outbox.Entry, exc: TransportError) -> None:
        planned = entry.event
        attempt = entry.attempts + 1
        final = not exc.retryable or attempt >= MAX_ATTEMPTS
        log.warning("send_failed", chat=planned.chat, attempt=attempt, final=final, error=str(exc))
        if final:
            self._retry_at.pop(planned.reply_id, None)
        else:
            self._retry_at[planned.reply_id] = (
                self.clock() + _BACKOFF[min(attempt - 1, len(_BACKOFF) - 1)]
            )
        await self.live.append(
            ReplyFailed(
                chat=planned.chat,
                reply_id=planned.reply_id,
                error=str(exc),
                final=final,
                attempt=attempt,
            )
        )

    async def _mark_read(self, planned: ReplyPlanned, to: str) -> None:
        """The answered messages, marked read once the answer is out; best effort."""
        if planned.purpose != "reply" or not planned.trigger_ids:
            return
        sender = planned.quoted.sender if planned.quoted is not None else None
        with anyio.move_on_after(_READ_DEADLINE):
            try:
                await self.transport.mark_read(to, planned.trigger_ids, sender)
            except Exception as exc:
                log.debug("mark_read_failed", chat=planned.chat, error=str(exc))
