"""The JSON lines of the stdio transport (docs/stdio.md), in and out.

In: ``message`` (the default type, with an optional attachment under ``media``),
``edit``, ``revoke``, ``timer``, ``status`` (``restricted``: an ``AccountRestricted``;
any other state: a ``TransportStatus``), ``undecryptable``
and ``receipt``. Out:
``sent``, ``presence`` and ``read``. Decoding is validation: a line of the
wrong shape raises ``msgspec.ValidationError`` and is skipped by the caller.
``inbound_line`` is the inverse of decoding: the stdin line a fact comes from
(``python -m pipeline inbound`` prints it for a captured WhatsApp event).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from typing import Annotated, Literal

import msgspec

from events.jid import InvalidJid, normalize
from events.jid import is_group as group_jid
from events.model import (
    AccountRestricted,
    Media,
    MediaKind,
    MediaProblem,
    MessageEdited,
    MessageKind,
    MessageReceived,
    MessageRevoked,
    MessageUndecryptable,
    Quoted,
    ReceiptState,
    ReplyDelivered,
    ReplyPurpose,
    TimerChanged,
    TransportState,
    TransportStatus,
    UndecryptableReason,
)
from pipeline.media import MediaSource, guess_mime, message_kind
from pipeline.transport._base import Fact, Outgoing, Voice, received_message
from pipeline.transport._stdio_media import ElidedSource, FileSource, InlineSource, elided

# Senders stamp either unix seconds or (like WhatsApp) milliseconds.
_MILLIS_THRESHOLD = 1e12
# WhatsApp's message ids are about 20 characters; one is part of the log's key.
_Id = Annotated[str, msgspec.Meta(max_length=256)]
# A disappearing-message timer in seconds (WhatsApp's field is a uint32).
_Seconds = Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)]
# Message ids one receipt line may name (WhatsApp lists a few dozen at most).
_MAX_RECEIPT_IDS = 1024
# The fields that hold a JID or phone number, on any line type.
_JID_FIELDS = ("chat", "sender", "sender_alt", "chat_alt", "me_lid", "me_pn")


class Head(msgspec.Struct):
    type: str = "message"


class _QuotedLine(msgspec.Struct, kw_only=True):
    id: _Id
    text: str = ""
    sender: str | None = None


class MediaLine(msgspec.Struct, kw_only=True):
    """An attachment: its bytes in the file ``path`` or as base64 ``data``."""

    kind: MediaKind
    mime: str | None = None
    path: str | None = None
    # The base64 JSON string as it is in the line (a view, not a copy: it may be 20 MB).
    data: msgspec.Raw = msgspec.Raw()
    file_name: str | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        data = bytes(memoryview(self.data)[:1])
        if data not in (b"", b'"', b"n"):  # absent, a string, null
            raise msgspec.ValidationError("media.data must be a base64 string")
        if data != b'"':
            self.data = msgspec.Raw()
        has_data = data == b'"'
        if self.path is not None and has_data:
            raise msgspec.ValidationError("media takes `path` or `data`, not both")
        if self.path is None and not has_data and self.kind != "sticker":
            raise msgspec.ValidationError("media needs `path` (a file) or `data` (base64)")
        if self.path is not None and not os.path.isabs(self.path):
            raise msgspec.ValidationError("media.path must be an absolute path")
        if self.seconds is not None and self.seconds < 0:
            raise msgspec.ValidationError("media.seconds must not be negative")


class MessageLine(msgspec.Struct, kw_only=True):
    chat: str
    text: str | None = None  # required, unless there is an attachment
    id: _Id | None = None
    sender: str | None = None
    from_me: bool = False
    timestamp: float | None = None
    push_name: str | None = None
    sender_alt: str | None = None
    chat_alt: str | None = None
    is_group: bool | None = None
    kind: MessageKind = "text"
    quoted: _QuotedLine | None = None
    quoted_id: _Id | None = None  # the first round's spelling of quoted.id
    mentions: list[str] = []
    media: MediaLine | None = None
    expiration: _Seconds | None = None  # the chat's disappearing-message timer (0: off)

    def __post_init__(self) -> None:
        if self.text is None and self.media is None:
            raise msgspec.ValidationError("Object missing required field `text`")


class UndecryptableLine(msgspec.Struct, kw_only=True):
    """A message WhatsApp handed over without readable content (docs/stdio.md)."""

    chat: str
    id: _Id
    reason: UndecryptableReason
    sender: str | None = None
    sender_alt: str | None = None
    from_me: bool = False
    is_group: bool | None = None
    timestamp: float | None = None
    detail: str | None = None  # what WhatsApp said of it, in a few words


class ReceiptLine(msgspec.Struct, kw_only=True):
    """What WhatsApp reports about messages the bot sent, by their ``sent`` ids."""

    chat: str
    ids: Annotated[list[_Id], msgspec.Meta(min_length=1, max_length=_MAX_RECEIPT_IDS)]
    state: ReceiptState
    timestamp: float | None = None


class EditLine(msgspec.Struct, kw_only=True):
    chat: str
    id: _Id
    text: str | None  # null: the edit could not be read (its original was never seen)
    edit_id: _Id | None = None  # WhatsApp's id of the edit itself
    # Who sent the edit (only the message's author may edit it); none: not said.
    sender: str | None = None
    sender_alt: str | None = None
    from_me: bool = False


class RevokeLine(msgspec.Struct, kw_only=True):
    chat: str
    id: _Id


class TimerLine(msgspec.Struct, kw_only=True):
    chat: str
    id: _Id
    expiration: _Seconds


class StatusLine(msgspec.Struct, kw_only=True):
    state: TransportState | Literal["restricted"]
    detail: str | None = None
    me_lid: str | None = None
    me_pn: str | None = None
    # "restricted" only: when it ends (unix seconds or milliseconds; null: not said)
    # and WhatsApp's error number.
    until: float | None = None
    code: int | None = None


class _SentLine(msgspec.Struct, tag_field="type", tag="sent", omit_defaults=True):
    id: str
    chat: str
    text: str
    reply_to: str | None
    purpose: ReplyPurpose
    quoted: str | None
    part: int | None = None
    parts: int | None = None
    expiration: int | None = None  # left out when the chat's timer is off or unknown
    media: _SentMedia | None = None  # a voice reply; ``text`` is its words


class _SentMedia(msgspec.Struct):
    kind: Literal["voice"]
    path: str
    mime: str
    seconds: int


class _PresenceLine(msgspec.Struct, tag_field="type", tag="presence"):
    chat: str
    state: str


class _ReadLine(msgspec.Struct, tag_field="type", tag="read"):
    chat: str
    ids: list[str]


LINES: dict[str, type[msgspec.Struct]] = {
    "message": MessageLine,
    "edit": EditLine,
    "revoke": RevokeLine,
    "timer": TimerLine,
    "status": StatusLine,
    "undecryptable": UndecryptableLine,
    "receipt": ReceiptLine,
}
_encoder = msgspec.json.Encoder()


def _seconds(stamp: float | None, now: float) -> float:
    """A line's timestamp in unix seconds (given in seconds or milliseconds), else ``now``."""
    if stamp is None:
        return now
    return stamp / 1000 if stamp > _MILLIS_THRESHOLD else stamp


def _sender(line: MessageLine | UndecryptableLine | EditLine, owner_jid: str) -> str | None:
    """Who a line says sent it; the owner for a ``from_me`` line that does not say (the
    chat would be the wrong default); None: not said."""
    return line.sender or (owner_jid if line.from_me else None)


def message(line: MessageLine, owner_jid: str, now: float) -> Fact:
    """A message line as ``MessageReceived``; raises ``InvalidJid`` for a bad id."""
    sender = _sender(line, owner_jid)
    chat_alt = line.chat_alt
    if chat_alt is None and line.sender_alt and (sender is None or sender == line.chat):
        chat_alt = line.sender_alt  # in a DM the sender's other id is the chat's
    quoted = line.quoted
    if quoted is None and line.quoted_id:
        quoted = _QuotedLine(id=line.quoted_id)
    media = line.media
    return received_message(
        chat=line.chat,
        msg_id=line.id or uuid.uuid4().hex.upper(),
        text=line.text or "",
        sent_at=_seconds(line.timestamp, now),
        sender=sender,
        from_me=line.from_me,
        push_name=line.push_name,
        sender_alt=line.sender_alt,
        kind=line.kind if media is None else message_kind(media.kind),
        quoted=None if quoted is None else Quoted(**msgspec.structs.asdict(quoted)),
        mentions=line.mentions,
        chat_alt=chat_alt,
        is_group=line.is_group,
        media=None if media is None else _media(media),
        expiration=line.expiration,
    )


def undecryptable(line: UndecryptableLine, owner_jid: str, now: float) -> Fact:
    """An undecryptable line as ``MessageUndecryptable``; raises ``InvalidJid`` for a bad id."""
    chat = normalize(line.chat)
    sender = _sender(line, owner_jid)
    return MessageUndecryptable(
        chat=chat,
        msg_id=line.id,
        sender=normalize(sender) if sender else chat,
        reason=line.reason,
        sender_alt=normalize(line.sender_alt) if line.sender_alt else None,
        is_group=group_jid(chat) if line.is_group is None else line.is_group,
        from_me=line.from_me,
        sent_at=_seconds(line.timestamp, now),
        detail=line.detail or "",
    )


def receipts(line: ReceiptLine, now: float) -> list[Fact]:
    """A receipt line as one ``ReplyDelivered`` per id, each a repeat at most once."""
    chat = normalize(line.chat)
    at = _seconds(line.timestamp, now)
    ids = dict.fromkeys(line.ids)
    return [ReplyDelivered(chat=chat, reply_id="", wa_id=i, state=line.state, at=at) for i in ids]


def _media(line: MediaLine) -> Media:
    name = line.file_name or (os.path.basename(line.path) if line.path else None)
    return Media(
        kind=line.kind,
        mime=line.mime or guess_mime(line.kind, name),
        seconds=line.seconds,
        file_name=name if line.kind in ("document", "audio") else line.file_name,
    )


def media_source(line: MessageLine) -> MediaSource | None:
    """Where the attachment's bytes are, fetched only if the daemon wants them."""
    media = line.media
    if media is None or media.kind == "sticker":
        return None
    if media.path is not None:
        return FileSource(media.path)
    characters = elided(media.data)
    return InlineSource(media.data) if characters is None else ElidedSource(characters)


def elided_media(line: msgspec.Struct) -> bool:
    """A message whose attachment's base64 ``skim`` left out of its line."""
    media = line.media if isinstance(line, MessageLine) else None
    return media is not None and media.path is None and elided(media.data) is not None


def edit(line: EditLine, owner_jid: str) -> Fact:
    """An edit line as ``MessageEdited``; raises ``InvalidJid`` for a bad id."""
    editor = _sender(line, owner_jid)
    return MessageEdited(
        chat=normalize(line.chat),
        msg_id=line.id,
        text=line.text,
        edit_id=line.edit_id,
        editor=normalize(editor) if editor else None,
        editor_alt=normalize(line.sender_alt) if line.sender_alt else None,
        from_me=line.from_me,
    )


def revoke(line: RevokeLine) -> Fact:
    return MessageRevoked(chat=normalize(line.chat), msg_id=line.id)


def timer(line: TimerLine) -> Fact:
    return TimerChanged(chat=normalize(line.chat), msg_id=line.id, expiration=line.expiration)


def status(line: StatusLine) -> TransportStatus | AccountRestricted:
    if line.state == "restricted":
        until = line.until
        if until is not None and until > _MILLIS_THRESHOLD:
            until /= 1000
        return AccountRestricted(code=line.code, until=until, detail=line.detail or "")
    return TransportStatus(
        state=line.state,
        detail=line.detail or "",
        me_lid=normalize(line.me_lid) if line.me_lid else None,
        me_pn=normalize(line.me_pn) if line.me_pn else None,
    )


def sent_line(message: Outgoing, msg_id: str) -> bytes:
    line = _SentLine(
        id=msg_id,
        chat=message.to,
        text=message.text,
        reply_to=message.reply_to,
        purpose=message.purpose,
        quoted=message.quoted.id if message.quoted is not None else None,
        part=message.part,
        parts=message.parts,
        expiration=message.expiration or None,
        media=_sent_media(message.voice) if message.voice is not None else None,
    )
    return _encoder.encode(line) + b"\n"


def _sent_media(voice: Voice) -> _SentMedia:
    return _SentMedia(kind="voice", path=voice.path, mime=voice.mime, seconds=voice.seconds)


def presence_line(chat: str, state: str) -> bytes:
    return _encoder.encode(_PresenceLine(chat, state)) + b"\n"


def read_line(chat: str, ids: Sequence[str]) -> bytes:
    return _encoder.encode(_ReadLine(chat, list(ids))) + b"\n"


def invalid_jid_field(line: msgspec.Struct) -> str:
    """The name of the first id on ``line`` that is not a JID or phone number."""
    ids = [(name, getattr(line, name, None)) for name in _JID_FIELDS]
    ids += [(f"mentions[{n}]", jid) for n, jid in enumerate(getattr(line, "mentions", []))]
    quoted = getattr(line, "quoted", None)
    ids.append(("quoted.sender", quoted.sender if quoted is not None else None))
    for name, value in ids:
        try:
            if value:
                normalize(value)
        except InvalidJid:
            return name
    return "an id"


# -- a fact as the stdin line it comes from (``python -m pipeline inbound``) ----------


class _QuotedOut(msgspec.Struct):
    id: str
    text: str
    sender: str | None


class _MediaOut(msgspec.Struct, omit_defaults=True):
    """An attachment as its sender declared it: the bytes are not in the event."""

    kind: MediaKind
    mime: str
    size: int
    seconds: float | None = None
    file_name: str | None = None
    problem: MediaProblem | None = None
    detail: str = ""


class _MessageOut(msgspec.Struct, tag_field="type", tag="message"):
    id: str
    chat: str
    sender: str
    text: str
    from_me: bool
    timestamp: float
    push_name: str | None
    sender_alt: str | None
    chat_alt: str | None
    is_group: bool
    kind: MessageKind
    quoted: _QuotedOut | None
    mentions: list[str]
    expiration: int | None
    media: _MediaOut | None


class _EditOut(msgspec.Struct, tag_field="type", tag="edit"):
    chat: str
    id: str
    text: str | None
    edit_id: str | None
    sender: str | None
    sender_alt: str | None
    from_me: bool


class _RevokeOut(msgspec.Struct, tag_field="type", tag="revoke"):
    chat: str
    id: str


class _TimerOut(msgspec.Struct, tag_field="type", tag="timer"):
    chat: str
    id: str
    expiration: int


class _UndecryptableOut(msgspec.Struct, tag_field="type", tag="undecryptable"):
    chat: str
    id: str
    sender: str
    reason: UndecryptableReason
    sender_alt: str | None
    is_group: bool
    from_me: bool
    timestamp: float
    detail: str


class _ReceiptOut(msgspec.Struct, tag_field="type", tag="receipt"):
    chat: str
    ids: list[str]
    state: ReceiptState
    timestamp: float


class _DroppedOut(msgspec.Struct, tag_field="type", tag="dropped"):
    reason: str


def inbound_line(fact: Fact) -> bytes:
    """The stdin line that decodes to ``fact`` (media: its description, never its bytes)."""
    return _encoder.encode(_line_of(fact)) + b"\n"


def dropped_line(reason: str) -> bytes:
    """What ``inbound`` prints for an event with nothing to record."""
    return _encoder.encode(_DroppedOut(reason)) + b"\n"


def _line_of(fact: Fact) -> msgspec.Struct:
    if isinstance(fact, MessageReceived):
        return _message_out(fact)
    if isinstance(fact, MessageEdited):
        return _EditOut(
            fact.chat,
            fact.msg_id,
            fact.text,
            fact.edit_id,
            fact.editor,
            fact.editor_alt,
            fact.from_me,
        )
    if isinstance(fact, MessageRevoked):
        return _RevokeOut(fact.chat, fact.msg_id)
    if isinstance(fact, TimerChanged):
        return _TimerOut(fact.chat, fact.msg_id, fact.expiration)
    if isinstance(fact, ReplyDelivered):
        return _ReceiptOut(fact.chat, [fact.wa_id], fact.state, fact.at)
    return _UndecryptableOut(
        chat=fact.chat,
        id=fact.msg_id,
        sender=fact.sender,
        reason=fact.reason,
        sender_alt=fact.sender_alt,
        is_group=fact.is_group,
        from_me=fact.from_me,
        timestamp=fact.sent_at,
        detail=fact.detail,
    )


def _message_out(fact: MessageReceived) -> _MessageOut:
    quoted = fact.quoted
    return _MessageOut(
        id=fact.msg_id,
        chat=fact.chat,
        sender=fact.sender,
        text=fact.text,
        from_me=fact.from_me,
        timestamp=fact.sent_at,
        push_name=fact.push_name,
        sender_alt=fact.sender_alt,
        chat_alt=fact.chat_alt,
        is_group=fact.is_group,
        kind=fact.kind,
        quoted=None if quoted is None else _QuotedOut(quoted.id, quoted.text, quoted.sender),
        mentions=fact.mentions,
        expiration=fact.expiration,
        media=None if fact.media is None else _media_out(fact.media),
    )


def _media_out(media: Media) -> _MediaOut:
    return _MediaOut(
        kind=media.kind,
        mime=media.mime,
        size=media.size,
        seconds=media.seconds,
        file_name=media.file_name,
        problem=media.problem,
        detail=media.detail,
    )
