"""The sender: delivers planned replies, each chat's in log order, and records the outcome.

It only ever sends what a committed ``ReplyPlanned`` names, and only until a
``ReplySent`` or final ``ReplyFailed`` is in the log; after a restart the
outbox projection hands it exactly the replies still owed. Like the agent it
wakes on every commit; the poll interval is only a fallback.

A WhatsApp outage costs nothing but time: while the last ``TransportStatus``
says the connection is not up nothing is tried (so no attempt is spent), and the one
that says the connection is back wakes the sender. A reply still fresh then
goes out; one planned more than ``catch_up_minutes`` ago is failed as stale,
as its question would have been. Chats are sent to concurrently, so a send
that waits for a connection (or hangs) holds only its own chat.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import anyio

from events.model import ReplyFailed, ReplyPlanned, ReplySent
from pipeline.daemon._failures import Failures
from pipeline.daemon._live import Live
from pipeline.daemon._settings import Settings
from pipeline.logs import get_logger
from pipeline.transport import Outgoing, Transport, TransportError
from projections import addresses, outbox, timers

log = get_logger("wabot.sender")

# Retryable failures before the owner's own notices (startup, check-in, alert) are
# given up; replies are retried until they are stale.
MAX_ATTEMPTS = 5
_BACKOFF = (1.0, 2.0, 5.0, 15.0, 30.0)
_READ_DEADLINE = 5.0
# Answers to a message: too late to send once the message would be too old to answer.
_ANSWERS = frozenset({"reply", "debug"})


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
        # Woken by commits, and by each chat's worker as it ends (its retry time is set).
        self._waker = live.waker()
        self._retry_at: dict[str, float] = {}
        self._busy: set[str] = set()  # chats a worker is sending to
        self._done = anyio.Event()
        self._failures = Failures(log, "send_pass_failed")

    async def run(self) -> None:
        async with anyio.create_task_group() as tg:
            while True:
                wake = math.inf
                # A failure to read the log must not stop later sends.
                with self._failures.guard():
                    wake = self._dispatch(tg)
                poll = self.settings.app.polling.interval_seconds
                await self._waker.wait(min(poll, wake - self.clock()))

    async def send_due(self) -> float:
        """Send what is owed and due, and wait until no chat is being sent to
        (shutdown drains so); returns when the next retry falls due (inf: none)."""
        async with anyio.create_task_group() as tg:
            self._dispatch(tg)
        while self._busy:  # chats the run loop's workers are still on
            await self._done.wait()
        heads = (entries[0].event.reply_id for entries in self._owed().values())
        return min((self._retry_at.get(r, math.inf) for r in heads), default=math.inf)

    def _dispatch(self, tg: anyio.abc.TaskGroup) -> float:
        """Start a worker for each chat whose next message is due; when the next is due."""
        # None: a rotation removed every report (a connection up for longer than the
        # retention); the transport itself says whether a send can go.
        if self.live.view.stats.transport_state not in ("connected", None):
            return math.inf  # the TransportStatus saying it is back wakes us
        owed = self._owed()
        ids = {e.event.reply_id for entries in owed.values() for e in entries}
        # Replies gone from the log (sent, failed, forgotten) wait for nothing.
        self._retry_at = {r: at for r, at in self._retry_at.items() if r in ids}
        now = self.clock()
        later: list[float] = []
        for chat, entries in owed.items():
            due = self._retry_at.get(entries[0].event.reply_id, 0.0)
            if chat in self._busy:
                continue
            if due > now:
                later.append(due)
                continue
            self._busy.add(chat)
            tg.start_soon(self._work_chat, chat, entries)
        return min(later, default=math.inf)

    def _owed(self) -> dict[str, list[outbox.Entry]]:
        chats: dict[str, list[outbox.Entry]] = {}
        for entry in outbox.unsent(self.live.view.outbox):
            chats.setdefault(entry.event.chat, []).append(entry)
        return chats

    async def _work_chat(self, chat: str, entries: list[outbox.Entry]) -> None:
        """One chat's owed messages in order, until one must wait (it holds the later ones)."""
        try:
            for entry in entries:
                try:
                    if self._stale(entry):
                        await self._failed(entry, "stale: " + self._too_late(), final=True)
                    elif not await self._send(entry):
                        return
                except Exception:
                    # An outcome not recorded (a full disk): tried again later, not at once.
                    log.exception("send_pass_failed", chat=chat)
                    self._retry_at[entry.event.reply_id] = self.clock() + _BACKOFF[-1]
                    return
        finally:
            self._busy.discard(chat)
            self._done.set()
            self._done = anyio.Event()
            self._waker.wake()

    def _stale(self, entry: outbox.Entry) -> bool:
        catch_up = self.settings.app.polling.catch_up_minutes * 60
        return entry.event.purpose in _ANSWERS and self.clock() - entry.ts > catch_up

    def _too_late(self) -> str:
        minutes = self.settings.app.polling.catch_up_minutes
        return f"not sent within polling.catch_up_minutes ({minutes:g}) of being planned"

    async def _send(self, entry: outbox.Entry) -> bool:
        """Send one; whether the chat's later messages may go (sent, or failed for good)."""
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
            # The chat's disappearing-message timer: else the reply stays for good.
            expiration=timers.seconds(view.timers, planned.chat),
        )
        try:
            receipt = await self.transport.send(message)
        except TransportError as exc:
            final = not exc.retryable or (
                planned.purpose not in _ANSWERS and entry.attempts + 1 >= MAX_ATTEMPTS
            )
            await self._failed(entry, str(exc), final=final)
            return final
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
        return True

    async def _failed(self, entry: outbox.Entry, error: str, *, final: bool) -> None:
        planned = entry.event
        attempt = entry.attempts + 1
        log.warning("send_failed", chat=planned.chat, attempt=attempt, final=final, error=error)
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
                error=error,
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
