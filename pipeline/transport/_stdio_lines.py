"""The JSON lines of the stdio transport (DESIGN.md section 7), in and out.

In: ``message`` (the default type, with an optional attachment under ``media``),
``edit``, ``revoke`` and ``status`` (``restricted``: an ``AccountRestricted``,
DESIGN.md section 11.1; any other state: a ``TransportStatus``). Out:
``sent``, ``presence`` and ``read``. Decoding is validation: a line of the
wrong shape raises ``msgspec.ValidationError`` and is skipped by the caller.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from typing import Annotated, Literal

import msgspec

from events.jid import InvalidJid, normalize
from events.model import (
    AccountRestricted,
    Media,
    MediaKind,
    MessageEdited,
    MessageKind,
    MessageRevoked,
    Quoted,
    ReplyPurpose,
    TransportState,
    TransportStatus,
)
from pipeline.media import MediaSource, guess_mime, message_kind
from pipeline.transport._base import Fact, Outgoing, received_message
from pipeline.transport._stdio_media import FileSource, InlineSource

# Senders stamp either unix seconds or (like WhatsApp) milliseconds.
_MILLIS_THRESHOLD = 1e12
# WhatsApp's message ids are about 20 characters; one is part of the log's key.
_Id = Annotated[str, msgspec.Meta(max_length=256)]
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

    def __post_init__(self) -> None:
        if self.text is None and self.media is None:
            raise msgspec.ValidationError("Object missing required field `text`")


class EditLine(msgspec.Struct, kw_only=True):
    chat: str
    id: _Id
    text: str


class RevokeLine(msgspec.Struct, kw_only=True):
    chat: str
    id: _Id


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
    "status": StatusLine,
}
_encoder = msgspec.json.Encoder()


def message(line: MessageLine, owner_jid: str, now: float) -> Fact:
    """A message line as ``MessageReceived``; raises ``InvalidJid`` for a bad id."""
    stamp = line.timestamp
    if stamp is not None and stamp > _MILLIS_THRESHOLD:
        stamp /= 1000
    # The owner typed a from_me message, so the chat is the wrong default sender.
    sender = line.sender or (owner_jid if line.from_me else None)
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
        sent_at=now if stamp is None else stamp,
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
    )


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
    return InlineSource(media.data)


def edit(line: EditLine) -> Fact:
    return MessageEdited(chat=normalize(line.chat), msg_id=line.id, text=line.text)


def revoke(line: RevokeLine) -> Fact:
    return MessageRevoked(chat=normalize(line.chat), msg_id=line.id)


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
    )
    return _encoder.encode(line) + b"\n"


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
