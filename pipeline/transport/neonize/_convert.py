"""neonize's protobuf messages to and from our plain values.

neonize ships no type information, so its objects are ``Any`` here and
nowhere else: everything this module returns is one of our own types.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from neonize.proto.Neonize_pb2 import JID
from neonize.utils.jid import Jid2String, JIDToNonAD

from events.jid import InvalidJid, normalize
from events.model import MessageKind, MessageReceived
from pipeline.transport._base import received_message

_MILLIS_PER_SECOND = 1000

# Fields of a WhatsApp ``Message`` that carry content, with the kind they
# are recorded as. Reactions, protocol messages (deletes, key shares) and
# the like are not listed: they carry nothing to answer.
_CONTENT: tuple[tuple[str, MessageKind], ...] = (
    ("extendedTextMessage", "text"),
    ("imageMessage", "image"),
    ("videoMessage", "video"),
    ("ptvMessage", "video"),
    ("audioMessage", "audio"),
    ("documentMessage", "document"),
    ("stickerMessage", "sticker"),
    ("locationMessage", "other"),
    ("liveLocationMessage", "other"),
    ("contactMessage", "other"),
    ("contactsArrayMessage", "other"),
    ("pollCreationMessage", "other"),
    ("pollCreationMessageV2", "other"),
    ("pollCreationMessageV3", "other"),
)
_TEXT_FIELDS = ("text", "caption")


class _Content(NamedTuple):
    kind: MessageKind
    text: str
    quoted_id: str | None
    mentions: list[str]


def jid_from_str(value: str) -> Any:
    """The JID proto for ``user[.agent][:device]@server`` (the inverse of ``Jid2String``)."""
    user, _, server = value.rpartition("@")
    device = agent = 0
    if ":" in user:
        user, raw_device = user.split(":", 1)
        device = int(raw_device)
    if "." in user:
        user, raw_agent = user.split(".", 1)
        agent = int(raw_agent)
    # Every field is set: the proto2 JID has required fields and will not serialise without them.
    return JID(User=user, Server=server, Device=device, RawAgent=agent, Integrator=0, IsEmpty=False)


def message_received(ev: Any) -> MessageReceived | None:
    """A ``MessageEv`` as ``MessageReceived``; None when it has nothing to answer.

    Raises ``events.jid.InvalidJid`` for a chat we cannot name (status
    broadcasts of unknown servers, say).
    """
    content = _content(ev.Message)
    if content is None:
        return None
    info = ev.Info
    source = info.MessageSource
    return received_message(
        chat=Jid2String(source.Chat),
        msg_id=info.ID,
        text=content.text,
        sent_at=info.Timestamp / _MILLIS_PER_SECOND,
        sender=_user(source.Sender),
        from_me=source.IsFromMe,
        push_name=info.Pushname or None,
        # Always present on the wire; an empty User means there is none.
        sender_alt=_user(source.SenderAlt),
        kind=content.kind,
        quoted_id=content.quoted_id,
        mentions=content.mentions,
    )


def _user(jid: Any) -> str | None:
    """A person's JID without device, or None when the proto holds no user."""
    return Jid2String(JIDToNonAD(jid)) if jid.User else None


def _content(message: Any) -> _Content | None:
    if message.HasField("conversation"):
        return _Content("text", message.conversation, None, []) if message.conversation else None
    for field, kind in _CONTENT:
        if message.HasField(field):
            return _part(getattr(message, field), kind)
    if message.HasField("documentWithCaptionMessage"):
        return _part(message.documentWithCaptionMessage.message.documentMessage, "document")
    return None


def _part(part: Any, kind: MessageKind) -> _Content | None:
    fields = part.DESCRIPTOR.fields_by_name
    text = next((getattr(part, name) for name in _TEXT_FIELDS if name in fields), "")
    if kind == "text" and not text:
        return None  # an edit or a link preview without text
    quoted_id: str | None = None
    mentions: list[str] = []
    if "contextInfo" in fields and part.HasField("contextInfo"):
        context = part.contextInfo
        quoted_id = context.stanzaID or None
        mentions = [jid for jid in context.mentionedJID if _is_jid(jid)]
    return _Content(kind, text, quoted_id, mentions)


def _is_jid(value: str) -> bool:
    """Whether ``value`` names someone: one odd mention must not cost the whole message."""
    try:
        normalize(value)
    except InvalidJid:
        return False
    return True
