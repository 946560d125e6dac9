"""The one interface every transport (neonize, stdio, in-memory) implements.

A transport turns whatever it receives into ``Inbound`` messages whose chat
and sender are normalised JIDs, hands them to the daemon's ``deliver``
callback in arrival order, reports its connection state through ``status``,
and sends plain text. Deciding which chats are monitored is the daemon's job.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import NamedTuple, Protocol

from events.jid import is_group, normalize
from events.model import MessageKind, MessageReceived, ReplyPurpose, TransportStatus


class Inbound(NamedTuple):
    """A received message and when this process received it (unix seconds)."""

    event: MessageReceived
    received_at: float


class SendReceipt(NamedTuple):
    """What the transport confirms for a sent message."""

    wa_id: str
    sent_at: float


class TransportError(Exception):
    """A send or connection failure; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


Deliver = Callable[[Inbound], Awaitable[None]]
StatusSink = Callable[[TransportStatus], Awaitable[None]]


class Transport(Protocol):
    name: str
    owner_jid: str

    def new_message_id(self) -> str | None:
        """An id to put in ``ReplyPlanned.wa_id`` before sending; None if ids can't be preset."""
        ...

    async def run(self, deliver: Deliver, status: StatusSink) -> None:
        """Receive until cancelled, awaiting ``deliver`` for each message in order."""
        ...

    async def send(
        self,
        chat: str,
        text: str,
        *,
        wa_id: str | None,
        reply_to: str | None,
        purpose: ReplyPurpose,
    ) -> SendReceipt:
        """Send ``text`` to ``chat``, using ``wa_id`` as message id when given."""
        ...

    async def aclose(self) -> None: ...


def received_message(
    *,
    chat: str,
    msg_id: str,
    text: str,
    sent_at: float,
    sender: str | None = None,
    from_me: bool = False,
    push_name: str | None = None,
    sender_alt: str | None = None,
    kind: MessageKind = "text",
    quoted_id: str | None = None,
    mentions: Sequence[str] = (),
) -> MessageReceived:
    """A ``MessageReceived`` with normalised JIDs; ``sender`` defaults to ``chat``.

    Raises ``events.jid.InvalidJid`` for any id that is not a JID or phone number.
    """
    jid = normalize(chat)
    return MessageReceived(
        chat=jid,
        msg_id=msg_id,
        sender=normalize(sender) if sender else jid,
        sender_alt=normalize(sender_alt) if sender_alt else None,
        push_name=push_name,
        text=text,
        kind=kind,
        from_me=from_me,
        is_group=is_group(jid),
        sent_at=sent_at,
        quoted_id=quoted_id,
        mentions=[normalize(m) for m in mentions],
    )
