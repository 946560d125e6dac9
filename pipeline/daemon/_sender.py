"""The sender: delivers planned replies, each chat's in log order, and records the outcome.

It only ever sends what a committed ``ReplyPlanned`` names, and only until a
``ReplySent`` or final ``ReplyFailed`` is in the log; after a restart the
outbox projection hands it exactly the replies still owed. Like the agent it
wakes on every commit; the poll interval is only a fallback.

A WhatsApp outage costs nothing but time: while the last ``TransportStatus``
says the connection is not up nothing is tried (so no attempt is spent), and the one
that says the connection is back wakes the sender. A reply still fresh then
goes out; one planned more than ``catch_up_minutes`` ago is failed as stale,
as its question would have been. A reminder's message still unsent more than
``catch_up_minutes`` after the reminder was due is failed the same way, and
the line a missed reminder gets is planned in its place (``_reminding``):
never sent as if on time, never lost. Chats are sent to concurrently, so a send
that waits for a connection (or hangs) holds only its own chat.

What may go now is ``_outreach``'s rule: the global pace
(``whatsapp.max_sends_per_minute``, counted from the sends this process
started and, at start, those the log recorded just before) and a restriction
of the account. A send WhatsApp refuses with 463/479 is never retried in a
loop: it records ``AccountRestricted`` and replies to others wait for the hold
to end; the first one through after it records the restriction's end.

A part planned to be spoken is spoken just before it is sent (``_speaker``):
the speech is recorded before the voice note goes, so it is made once.

A ``forget`` of the chat may land while a reply goes out. Its outcome is
appended on condition of the view the send was decided from (``Guard``, in
the append's own statement: no extra round trip), so nothing of the chat is
recorded after the forget. A reply that waited (an outage, the pace, a
restriction, a failed try) reads the log again before it goes, since a forget
from another process may not be folded yet; one sent at once needs not.
"""

from __future__ import annotations

import bisect
import functools
import math
import uuid
from collections.abc import Callable

import msgspec

from events.model import AccountRestricted, AnyEvent, ReplyFailed, ReplyPlanned, ReplySent
from events.protocol import Forgotten, Guard
from pipeline.daemon import _outreach as outreach
from pipeline.daemon import _reminding as reminding
from pipeline.daemon._dispatch import Dispatcher, Job, Pass, backoff
from pipeline.daemon._folded_log import FoldedLog
from pipeline.daemon._presence import best_effort
from pipeline.daemon._replies import Ids
from pipeline.daemon._settings import Settings
from pipeline.daemon._speaker import Speaker
from pipeline.logs import get_logger
from pipeline.transport import RESTRICTED_CODES, Outgoing, Transport, TransportError, Voice
from projections import account, addresses, configs, connection, outbox, timers

log = get_logger("wabot.sender")

# Retryable failures before the owner's own notices (startup, check-in, alert) are
# given up; replies are retried until they are stale.
MAX_ATTEMPTS = 5
_BACKOFF = (1.0, 2.0, 5.0, 15.0, 30.0)
_READ_DEADLINE = 5.0
# Answers to a message (an owner command's too): too late to send once the message
# would be too old to answer.
_ANSWERS = frozenset({"reply", "debug", "command"})


class Sender:
    def __init__(
        self,
        folded: FoldedLog,
        transport: Transport,
        settings: Settings,
        *,
        clock: Callable[[], float],
        speaker: Speaker | None = None,
        ids: Ids | None = None,
    ) -> None:
        """``speaker`` makes the voice notes of spoken replies; without it they go as text.
        ``ids``: where the ids of a missed reminder's line come from."""
        self.ids = ids or Ids(lambda: uuid.uuid4().hex, transport.new_message_id)
        self.folded = folded
        self.speaker = speaker
        self.transport = transport
        self.settings = settings
        self.clock = clock
        # What admits a reply: the replies owed, the connection, the account's state.
        reads = (outbox.PROJECTION, connection.PROJECTION, account.PROJECTION, configs.PROJECTION)
        self._dispatch = Dispatcher(
            folded, settings, log, "send_pass_failed", clock=clock, reads=reads
        )
        self._retry_at: dict[str, float] = {}
        self._waited: set[str] = set()  # replies owed that a pass held back (by reply_id)
        # When recent sends started (None: not yet read from the log), and how many
        # sends were admitted that have not started yet.
        self._sends: list[float] | None = None
        self._reserved = 0

    async def run(self) -> None:
        # A failure to read the log must not stop later sends.
        await self._dispatch.run(self._look)

    async def send_due(self) -> float:
        """Send what is owed and due, and wait until no chat is being sent to
        (shutdown drains so); returns when something owed is due next (inf: nothing)."""
        await self._dispatch.once(self._look)
        admission = self._admission()
        return self.clock() if admission.work else admission.wake

    def _look(self, now: float) -> Pass:
        """A worker for each chat with owed messages to handle now; when to look again."""
        admission = self._admission()
        jobs: list[tuple[str, Job]] = []
        for chat, entries in admission.work.items():
            sends = sum(1 for e in entries if not self._stale(e))
            self._reserved += sends
            jobs.append((chat, functools.partial(self._work_chat, chat, entries, sends)))
        return Pass(jobs, admission.wake)

    def _admission(self) -> outreach.Admission:
        """What may be handled now (``_outreach``'s rule over the log and this sender)."""
        view = self.folded.view
        owed = outbox.unsent(view.outbox)
        ids = {e.event.reply_id for e in owed}
        # Replies gone from the log (sent, failed, forgotten) wait for nothing.
        self._retry_at = {r: at for r, at in self._retry_at.items() if r in ids}
        self._waited &= ids
        # None: a rotation removed every report (a connection up for longer than the
        # retention); the transport itself says whether a send can go.
        if not connection.usable(view.connection):
            self._waited |= ids
            return outreach.Admission({}, math.inf)  # the status saying it is back wakes us
        now = self.clock()
        if self._sends is None:  # what the last run just sent
            self._sends = outreach.in_window(account.send_times(view.account), now)
        outreach.still_in_window(self._sends, now)
        app = self.settings.app
        gate = outreach.Gate(
            now=now,
            owner=app.owner_jid,
            held_until=outreach.hold_until(view, now),
            probing=outreach.probing(view),
            sent=self._sends,
            reserved=self._reserved,
            limit=app.whatsapp.max_sends_per_minute,
            stale_at=self._stale_at,
        )
        held = self._dispatch.held(now)  # being sent to, or resting after a failed worker
        admission = outreach.admit(gate, owed, held, self._retry_at)
        admitted = {e.event.reply_id for entries in admission.work.values() for e in entries}
        self._waited |= {
            e.event.reply_id
            for e in owed
            if e.event.chat not in held and e.event.reply_id not in admitted
        }
        return admission

    async def _work_chat(self, chat: str, entries: list[outbox.Entry], sends: int) -> None:
        """One chat's admitted messages in order, until one must wait (it holds the later
        ones); ``sends``: how many of them hold a place in the pace."""
        try:
            for entry in entries:
                try:
                    if self._waited_for(entry) and not self._still_owed(entry):
                        return  # settled or forgotten while it waited: the next pass sees
                    if self._stale(entry):
                        await self._too_late_to_send(entry)
                        continue
                    sends -= 1
                    self._start_send()
                    if not await self._send(entry):
                        return
                except Forgotten:
                    # The chat was forgotten after the view this was decided from: its
                    # outcome is not recorded (nor are its later replies sent).
                    self.folded.refresh()
                    log.info("reply_outcome_dropped_forgotten", chat=chat)
                    return
                except Exception:
                    # An outcome not recorded (a full disk): tried again later, not at once.
                    log.exception("send_pass_failed", chat=chat)
                    self._retry_at[entry.event.reply_id] = self.clock() + _BACKOFF[-1]
                    return
        finally:
            self._reserved -= sends  # the places of sends this worker did not start

    def _waited_for(self, entry: outbox.Entry) -> bool:
        """Whether ``entry`` waited (held back by a pass, or failed before): long enough
        for another process's ``forget`` to be in the log and not yet in the view."""
        return entry.attempts > 0 or entry.event.reply_id in self._waited

    def _still_owed(self, entry: outbox.Entry) -> bool:
        """Whether the log, read again now, still owes ``entry`` (not sent, not forgotten)."""
        self.folded.refresh()
        owed = outbox.unsent(self.folded.view.outbox)
        return any(e.event.reply_id == entry.event.reply_id for e in owed)

    def _start_send(self) -> None:
        """A send starts now: it counts in the pace from here."""
        self._reserved -= 1
        if self._sends is not None:
            bisect.insort(self._sends, self.clock())  # oldest first, should the clock step back

    def _stale_at(self, entry: outbox.Entry) -> float:
        if entry.event.purpose not in _ANSWERS:
            return reminding.overdue(entry, self.settings.app)
        return entry.ts + self.settings.app.polling.catch_up_minutes * 60

    def _stale(self, entry: outbox.Entry) -> bool:
        return self.clock() >= self._stale_at(entry)

    async def _too_late_to_send(self, entry: outbox.Entry) -> None:
        """Failed as stale; a reminder's, with the line a missed one gets in its place."""
        if entry.due is None:
            guard = self.folded.guard(entry.event.chat)
            await self._failed(entry, "stale: " + self._too_late(), final=True, guard=guard)
            return
        app = self.settings.app
        guard = self.folded.guard(entry.event.chat)
        cause = reminding.late_for(entry, app, self.folded.view.account)
        events = reminding.missed_late(entry, app, self.ids, cause)
        self._retry_at.pop(entry.event.reply_id, None)
        log.info(
            "reminder_overdue", chat=entry.event.chat, reply_id=entry.event.reply_id, cause=cause
        )
        await self.folded.append(*events, guard=guard)

    def _too_late(self) -> str:
        minutes = self.settings.app.polling.catch_up_minutes
        return f"not sent within polling.catch_up_minutes ({minutes:g}) of being planned"

    async def _send(self, entry: outbox.Entry) -> bool:
        """Send one; whether the chat's later messages may go (sent, or failed for good)."""
        planned = entry.event
        view = self.folded.view
        guard = self.folded.guard(planned.chat)  # the outcome's condition: this view
        owner = self.settings.app.owner_jid
        to = addresses.destination(view.addresses, planned.chat, owner, view.identity.me_lid)
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
            voice=await self._voice(entry),
        )
        restriction = account.newest(view.account)
        try:
            receipt = await self.transport.send(message)
        except TransportError as exc:
            restricting = exc.code is not None and exc.code in RESTRICTED_CODES
            if exc.code is not None and restricting and planned.chat != owner:
                await self._restricted(entry, exc, exc.code, guard)
                return False
            # The owner's own chat is never held: tried again after a while, as any failure.
            final = not (exc.retryable or restricting) or (
                planned.purpose not in _ANSWERS and entry.attempts + 1 >= MAX_ATTEMPTS
            )
            await self._failed(entry, str(exc), final=final, guard=guard)
            return final
        self._retry_at.pop(planned.reply_id, None)
        delivered = receipt.to or to
        events: list[AnyEvent] = [
            ReplySent(
                chat=planned.chat,
                reply_id=planned.reply_id,
                wa_id=receipt.wa_id,
                sent_at=receipt.sent_at,
                to=delivered if delivered != planned.chat else None,
            )
        ]
        # Through to someone else, with no new refusal since it started: the episode is over.
        if (
            restriction is not None
            and planned.chat != owner
            and account.newest(self.folded.view.account) == restriction
        ):
            events.append(_LIFTED)
        await self.folded.append(*events, guard=guard)
        log.info("reply_sent", chat=planned.chat, purpose=planned.purpose, wa_id=receipt.wa_id)
        if self.settings.app.whatsapp.read_receipts and planned.opens_answer:
            await self._mark_read(planned, to)
        return True

    async def _voice(self, entry: outbox.Entry) -> Voice | None:
        """The voice note a spoken part goes as (spoken first if need be); None: text."""
        if self.speaker is None or entry.event.speech is None:
            return None
        return await self.speaker.voice(self.settings.loaded, entry)

    async def _restricted(
        self, entry: outbox.Entry, exc: TransportError, code: int, guard: Guard
    ) -> None:
        """WhatsApp refused the send for a restriction: hold, never retry in a loop."""
        planned = entry.event
        log.warning("account_restricted", chat=planned.chat, code=code, error=str(exc))
        detail = (
            f"WhatsApp refused a message with error {code} ({RESTRICTED_CODES[code]}): "
            "replies to others wait; nothing is sent but to your own chat until it ends"
        )
        restriction = AccountRestricted(code=code, detail=detail, reply_id=planned.reply_id)
        failed = ReplyFailed(
            chat=planned.chat,
            reply_id=planned.reply_id,
            error=f"restricted: {exc}",
            final=False,
            attempt=entry.attempts + 1,
        )
        try:
            await self.folded.append(failed, restriction, guard=guard)
        except Forgotten:
            # The chat's failure goes with the forget; the account's restriction is no
            # part of the chat and must hold, or the next send would meet it again.
            await self.folded.append(msgspec.structs.replace(restriction, reply_id=None))
            raise

    async def _failed(self, entry: outbox.Entry, error: str, *, final: bool, guard: Guard) -> None:
        planned = entry.event
        attempt = entry.attempts + 1
        log.warning("send_failed", chat=planned.chat, attempt=attempt, final=final, error=error)
        if final:
            self._retry_at.pop(planned.reply_id, None)
        else:
            self._retry_at[planned.reply_id] = self.clock() + backoff(_BACKOFF, attempt)
        await self.folded.append(
            ReplyFailed(
                chat=planned.chat,
                reply_id=planned.reply_id,
                error=error,
                final=final,
                attempt=attempt,
            ),
            guard=guard,
        )

    async def _mark_read(self, planned: ReplyPlanned, to: str) -> None:
        """The answered messages, marked read once the answer is out; best effort."""
        if planned.purpose != "reply" or not planned.trigger_ids:
            return
        sender = planned.quoted.sender if planned.quoted is not None else None
        await best_effort(
            self.transport.mark_read(to, planned.trigger_ids, sender),
            deadline=_READ_DEADLINE,
            logger=log,
            what="mark_read",
            chat=planned.chat,
        )


_LIFTED = AccountRestricted(active=False, detail="a message to someone else went through")
