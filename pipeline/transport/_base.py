"""The one interface every transport (neonize, stdio, in-memory) implements.

A transport turns whatever it receives into ``Inbound`` facts (a message, an
edit, a revoke, a message it could not read, a receipt for a message sent)
whose ids are normalised JIDs as WhatsApp used them, hands them to the
daemon's ``deliver`` callback in arrival order (an attachment as a
``MediaSource`` the daemon fetches only for chats it monitors), reports its connection
state (and the owner's own ids once connected) through ``status``, and sends
plain text or a voice note. Which chat a message belongs to, and whether it is monitored, is
the daemon's job.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import NamedTuple, Protocol

import msgspec

from events.jid import is_group as group_jid
from events.jid import normalize
from events.model import (
    AccountRestricted,
    Media,
    MessageEdited,
    MessageKind,
    MessageReceived,
    MessageRevoked,
    MessageUndecryptable,
    Quoted,
    ReplyDelivered,
    ReplyPurpose,
    TimerChanged,
    TransportStatus,
)
from pipeline.media import OGG_OPUS, MediaSource

# A receipt (``ReplyDelivered``) comes with ``reply_id`` "": the daemon finds the
# reply its ``wa_id`` belongs to, and drops it unseen when there is none.
Fact = (
    MessageReceived
    | MessageEdited
    | MessageRevoked
    | TimerChanged
    | MessageUndecryptable
    | ReplyDelivered
)


class Inbound(NamedTuple):
    """A received fact and when this process received it (unix seconds).

    ``media``: where the bytes of ``event.media`` can be fetched from, not
    fetched yet, so nothing of a chat that is not monitored is ever downloaded.
    """

    event: Fact
    received_at: float
    media: MediaSource | None = None


class Voice(msgspec.Struct, frozen=True, kw_only=True):
    """A voice note sent instead of text: an Ogg Opus file, its length and its bars."""

    path: str
    seconds: int  # whole seconds, as WhatsApp shows them
    waveform: bytes = b""  # 64 values 0-100
    mime: str = OGG_OPUS


class Outgoing(msgspec.Struct, frozen=True, kw_only=True):
    """One WhatsApp message to send; ``to`` is the id to address (LID or phone JID)."""

    to: str
    text: str
    wa_id: str | None = None  # the id to send with, where the transport can preset one
    reply_to: str | None = None  # the message answered (for the record; not quoted)
    purpose: ReplyPurpose = "reply"
    quoted: Quoted | None = None  # the message the WhatsApp message visibly quotes
    part: int | None = None
    parts: int | None = None
    # The chat's disappearing-message timer (seconds) the message is sent with; None: off.
    expiration: int | None = None
    # Sent as this voice note (push-to-talk); ``text`` is the words it speaks.
    voice: Voice | None = None


class SendReceipt(NamedTuple):
    """What the transport confirms for a sent message."""

    wa_id: str
    sent_at: float
    to: str | None = None  # where WhatsApp actually delivered it, when it says


# WhatsApp's errors for a send it refuses because the account is restricted from
# reaching out (peers found that resending makes it worse): code -> what it is.
RESTRICTED_CODES: Mapping[int, str] = {463: "reach-out timelock", 479: "message refused"}


class TransportError(Exception):
    """A send or connection failure; ``retryable`` says whether trying again may help.

    ``code`` is WhatsApp's error number when it gave one (463: the account is
    restricted from reaching out).
    """

    def __init__(self, message: str, *, retryable: bool, code: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.code = code


# Records a fact if its chat is monitored; True when it was (or is held to be) recorded.
Deliver = Callable[[Inbound], Awaitable[bool]]
# The connection's state, or WhatsApp restricting the account (a transport that learns it).
StatusSink = Callable[[TransportStatus | AccountRestricted], Awaitable[None]]


class Transport(Protocol):
    name: str
    owner_jid: str

    def new_message_id(self) -> str | None:
        """An id to put in ``ReplyPlanned.wa_id`` before sending; None if ids can't be preset."""
        ...

    async def run(self, deliver: Deliver, status: StatusSink) -> None:
        """Receive until cancelled, awaiting ``deliver`` for each fact in order: it
        returns once the fact is recorded (or dropped, or held while the log is away)."""
        ...

    async def send(self, message: Outgoing) -> SendReceipt:
        """Send one message; raises ``TransportError``."""
        ...

    async def typing(self, chat: str, on: bool) -> None:
        """Show (or stop showing) that a reply is being written in ``chat``; best effort."""
        ...

    async def mark_read(self, chat: str, ids: Sequence[str], sender: str | None) -> None:
        """Mark messages of ``sender`` in ``chat`` as read; best effort."""
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
    quoted: Quoted | None = None,
    mentions: Sequence[str] = (),
    chat_alt: str | None = None,
    is_group: bool | None = None,
    media: Media | None = None,
    expiration: int | None = None,
) -> MessageReceived:
    """A ``MessageReceived`` with normalised JIDs; ``sender`` defaults to ``chat``.

    ``is_group`` defaults to what the chat's server says. Raises
    ``events.jid.InvalidJid`` for any id that is not a JID or phone number.
    """
    jid = normalize(chat)
    if quoted is not None and quoted.sender:
        quoted = msgspec.structs.replace(quoted, sender=normalize(quoted.sender))
    return MessageReceived(
        chat=jid,
        msg_id=msg_id,
        sender=normalize(sender) if sender else jid,
        sender_alt=normalize(sender_alt) if sender_alt else None,
        push_name=push_name,
        text=text,
        kind=kind,
        from_me=from_me,
        is_group=group_jid(jid) if is_group is None else is_group,
        sent_at=sent_at,
        quoted_id=quoted.id if quoted is not None else None,
        mentions=[normalize(m) for m in mentions],
        chat_alt=normalize(chat_alt) if chat_alt else None,
        quoted=quoted,
        media=media,
        expiration=expiration,
    )
