"""An in-memory transport for tests: push facts in, read what was sent and shown."""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import NamedTuple

import anyio

from events.jid import normalize
from events.model import MessageKind, Quoted, TransportStatus
from pipeline.transport._base import (
    Deliver,
    Fact,
    Inbound,
    Outgoing,
    SendReceipt,
    StatusSink,
    TransportError,
    received_message,
)


class SentMessage(NamedTuple):
    message: Outgoing
    wa_id: str
    sent_at: float

    @property
    def chat(self) -> str:
        return self.message.to

    @property
    def text(self) -> str:
        return self.message.text


class MemoryTransport:
    """``push`` delivers like a real transport; sends land in ``sent``, in order."""

    name = "memory"

    def __init__(
        self,
        owner: str = "491700000000",
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.owner_jid = normalize(owner)
        self.sent: list[SentMessage] = []
        self.shown: list[tuple[str, str]] = []  # (chat, "composing" | "paused" | "read")
        self._clock = clock
        self._ids = itertools.count(1)
        self._failures: deque[TransportError] = deque()
        self._stalls: dict[str, anyio.Event] = {}
        self._deliver: Deliver | None = None
        self._running = anyio.Event()
        self._sent_changed = anyio.Event()
        self._taken = 0
        self._closed = False

    def new_message_id(self) -> str:
        return f"MEM{next(self._ids):06d}"

    def fail_next(self, *errors: TransportError) -> None:
        """The next sends raise these errors, one per send, before succeeding again."""
        self._failures.extend(errors)

    def stall(self, to: str) -> anyio.Event:
        """Sends to ``to`` hang, as over a dying connection, until the returned event is set."""
        gate = self._stalls[to] = anyio.Event()
        return gate

    async def run(self, deliver: Deliver, status: StatusSink) -> None:
        self._deliver = deliver
        await status(TransportStatus(state="connected", detail="memory"))
        self._running.set()
        await anyio.sleep_forever()

    async def push(
        self,
        chat: str,
        text: str,
        *,
        msg_id: str | None = None,
        sender: str | None = None,
        from_me: bool = False,
        sent_at: float | None = None,
        push_name: str | None = None,
        kind: MessageKind = "text",
        quoted: Quoted | None = None,
        mentions: Sequence[str] = (),
        chat_alt: str | None = None,
    ) -> Inbound:
        """Deliver one message once ``run`` has started; returns it after ``deliver`` is done."""
        now = self._clock()
        event = received_message(
            chat=chat,
            msg_id=msg_id or f"IN{next(self._ids):06d}",
            text=text,
            sent_at=now if sent_at is None else sent_at,
            sender=sender,
            from_me=from_me,
            push_name=push_name,
            kind=kind,
            quoted=quoted,
            mentions=mentions,
            chat_alt=chat_alt,
        )
        return await self.push_fact(event)

    async def push_fact(self, event: Fact) -> Inbound:
        """Deliver any fact (an edit, a revoke) as the transport would."""
        await self._running.wait()
        assert self._deliver is not None
        inbound = Inbound(event, self._clock())
        await self._deliver(inbound)
        return inbound

    async def send(self, message: Outgoing) -> SendReceipt:
        if self._closed:
            raise TransportError("memory transport is closed", retryable=False)
        if self._failures:
            raise self._failures.popleft()
        gate = self._stalls.get(message.to)
        if gate is not None:
            await gate.wait()
        sent = SentMessage(message, message.wa_id or self.new_message_id(), self._clock())
        self.sent.append(sent)
        self._sent_changed.set()
        self._sent_changed = anyio.Event()
        return SendReceipt(sent.wa_id, sent.sent_at)

    async def typing(self, chat: str, on: bool) -> None:
        self.shown.append((chat, "composing" if on else "paused"))

    async def mark_read(self, chat: str, ids: Sequence[str], sender: str | None) -> None:
        self.shown.extend((chat, f"read {i}") for i in ids)

    async def next_sent(self) -> SentMessage:
        """The oldest send not yet returned by this method, waiting for it if needed."""
        while self._taken == len(self.sent):
            await self._sent_changed.wait()
        self._taken += 1
        return self.sent[self._taken - 1]

    async def aclose(self) -> None:
        self._closed = True
