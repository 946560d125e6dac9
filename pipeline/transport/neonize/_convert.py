"""neonize's protobuf messages to and from our plain values.

neonize ships no type information, so its objects are ``Any`` here and in the
transport, nowhere else: everything this module returns is one of our types.

whatsmeow unwraps what WhatsApp wraps (device-sent, ephemeral, view-once,
document-with-caption, edited) before neonize hands the message over, so the
content is always at the top of ``ev.Message``. What arrives is one of: a
message with content, an edit or revoke (a ``protocolMessage``), an edit
encrypted with the original's message secret (``secretEncryptedMessage``), or
something with nothing to answer (reactions, key shares, history syncs).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from neonize.proto.Neonize_pb2 import JID
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import (
    ContextInfo,
    ExtendedTextMessage,
    Message,
    ProtocolMessage,
    SecretEncryptedMessage,
)
from neonize.utils.jid import Jid2String, JIDToNonAD

from events.jid import InvalidJid, normalize
from events.model import (
    MessageEdited,
    MessageKind,
    MessageReceived,
    MessageRevoked,
    Quoted,
)
from pipeline.media import message_kind
from pipeline.transport._base import Fact, Outgoing, received_message
from pipeline.transport.neonize._media import PARTS, media_of

_MILLIS_PER_SECOND = 1000
# Never answered, never stored: a send to status@broadcast posts a status.
_NOT_CHATS = frozenset({"broadcast", "newsletter"})

# Fields of a WhatsApp ``Message`` that carry content, with the kind they are
# recorded as. Reactions, protocol messages (key shares, history syncs) and
# the like are not listed: they carry nothing to answer.
_CONTENT: tuple[tuple[str, MessageKind], ...] = (
    ("extendedTextMessage", "text"),
    *((field, message_kind(kind)) for field, kind in PARTS),  # attachments
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
    context: Any  # the part's ContextInfo, or None


class SecretEdit(NamedTuple):
    """An edit encrypted with the original message's secret: decrypt, then ``edited``."""

    chat: str
    msg_id: str  # the message edited
    editor: str  # who edited it (non-AD JID)
    payload: bytes
    iv: bytes
    edit_id: str


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


def empty_jid() -> Any:
    return JID(User="", Server="", Device=0, RawAgent=0, Integrator=0, IsEmpty=True)


def jid(proto: Any) -> str | None:
    """A person's or chat's JID without device, or None when the proto holds none."""
    return Jid2String(JIDToNonAD(proto)) if proto.User else None


def secret_of(message: Any) -> bytes:
    """The message secret a later encrypted edit of this message is keyed with."""
    if message.HasField("messageContextInfo"):
        secret: bytes = message.messageContextInfo.messageSecret
        return secret
    return b""


def classify(ev: Any) -> Fact | SecretEdit | None:
    """What a ``MessageEv`` is for us; None when there is nothing to record.

    Raises ``events.jid.InvalidJid`` for a chat we cannot name.
    """
    source = ev.Info.MessageSource
    if source.Chat.Server in _NOT_CHATS:
        return None
    message = ev.Message
    chat = normalize(Jid2String(source.Chat))
    if message.HasField("protocolMessage"):
        return _protocol(chat, message.protocolMessage, ev.Info.ID)
    if message.HasField("secretEncryptedMessage"):
        return _secret_edit(chat, message.secretEncryptedMessage, ev.Info)
    return message_received(ev)


def _protocol(chat: str, pm: Any, edit_id: str) -> Fact | None:
    # REVOKE is 0, the default of an unset enum: only a set type counts.
    if not pm.HasField("type") or not pm.key.ID:
        return None
    if pm.type == ProtocolMessage.REVOKE:
        return MessageRevoked(chat=chat, msg_id=pm.key.ID)
    if pm.type == ProtocolMessage.MESSAGE_EDIT:
        content = _content(pm.editedMessage)
        text = content.text if content is not None else None
        return MessageEdited(chat=chat, msg_id=pm.key.ID, text=text, edit_id=edit_id or None)
    return None


def _secret_edit(chat: str, sem: Any, info: Any) -> SecretEdit | None:
    if sem.secretEncType != SecretEncryptedMessage.MESSAGE_EDIT or not sem.targetMessageKey.ID:
        return None
    editor = jid(info.MessageSource.Sender) or ""
    return SecretEdit(
        chat, sem.targetMessageKey.ID, editor, sem.encPayload, sem.encIV, info.ID or ""
    )


def edited(pending: SecretEdit, plaintext: bytes | None) -> MessageEdited:
    """The edit, from its decrypted payload (None: it could not be decrypted)."""
    text: str | None = None
    if plaintext is not None:
        decrypted = Message.FromString(plaintext)
        inner = (
            decrypted.protocolMessage.editedMessage
            if decrypted.HasField("protocolMessage")
            else decrypted
        )
        content = _content(inner)
        text = content.text if content is not None else None
    return MessageEdited(
        chat=pending.chat, msg_id=pending.msg_id, text=text, edit_id=pending.edit_id or None
    )


def message_received(ev: Any) -> MessageReceived | None:
    """A content-bearing ``MessageEv`` as ``MessageReceived``; None when it has nothing."""
    content = _content(ev.Message)
    if content is None:
        return None
    info = ev.Info
    source = info.MessageSource
    # The peer's other id: the sender's in a DM, the recipient's for the owner's own
    # messages (whatsmeow sets RecipientAlt then, never SenderAlt).
    alt = (
        None
        if source.IsGroup
        else jid(source.RecipientAlt if source.IsFromMe else source.SenderAlt)
    )
    media = media_of(ev.Message)
    return received_message(
        chat=Jid2String(source.Chat),
        msg_id=info.ID,
        text=content.text,
        sent_at=info.Timestamp / _MILLIS_PER_SECOND,
        sender=jid(source.Sender),
        from_me=source.IsFromMe,
        push_name=info.Pushname or None,
        # Always present on the wire; an empty User means there is none.
        sender_alt=jid(source.SenderAlt),
        kind=content.kind if media is None else message_kind(media.kind),
        quoted=_quoted(content.context),
        mentions=_mentions(content.context),
        chat_alt=alt,
        is_group=source.IsGroup,
        media=media,
    )


def _content(message: Any) -> _Content | None:
    if message.HasField("conversation"):
        return _Content("text", message.conversation, None) if message.conversation else None
    for field, kind in _CONTENT:
        if message.HasField(field):
            return _part(getattr(message, field), kind)
    if message.HasField("documentWithCaptionMessage"):  # whatsmeow unwraps it; just in case
        return _part(message.documentWithCaptionMessage.message.documentMessage, "document")
    return None


def _part(part: Any, kind: MessageKind) -> _Content | None:
    fields = part.DESCRIPTOR.fields_by_name
    text = next((getattr(part, name) for name in _TEXT_FIELDS if name in fields), "")
    if kind == "text" and not text:
        return None  # a link preview without text
    has_context = "contextInfo" in fields and part.HasField("contextInfo")
    return _Content(kind, text, part.contextInfo if has_context else None)


def _quoted(context: Any) -> Quoted | None:
    if context is None or not context.stanzaID:
        return None
    quoted = _content(context.quotedMessage) if context.HasField("quotedMessage") else None
    return Quoted(
        id=context.stanzaID,
        text=quoted.text if quoted is not None else "",
        sender=context.participant if _is_jid(context.participant) else None,
    )


def _mentions(context: Any) -> list[str]:
    # One odd mention must not cost the whole message.
    return [m for m in context.mentionedJID if _is_jid(m)] if context is not None else []


def _is_jid(value: str) -> bool:
    try:
        normalize(value)
    except InvalidJid:
        return False
    return True


def outgoing_message(message: Outgoing) -> Any:
    """The WhatsApp message to send: plain text, so ``@digits`` stay text, never mentions.

    A reply that quotes, or one to a chat with disappearing messages, is an
    ``extendedTextMessage`` (a ``conversation`` has no ``contextInfo``) built
    by hand: neonize's helper parses mentions and alters the quoted event. Its
    ``contextInfo`` holds the quote's id, author and text, and the chat's
    timer as ``expiration`` alone (as Baileys sends it): when the setting
    changed (``ephemeralSettingTimestamp``) is not known here, and a wrong
    one could read as a change of the setting.
    """
    quoted = message.quoted
    if quoted is None and not message.expiration:
        return Message(conversation=message.text)
    context = ContextInfo()
    if quoted is not None:
        context.stanzaID = quoted.id
        context.quotedMessage.CopyFrom(Message(conversation=quoted.text))
        if quoted.sender:
            context.participant = quoted.sender
    if message.expiration:
        context.expiration = message.expiration
    return Message(extendedTextMessage=ExtendedTextMessage(text=message.text, contextInfo=context))
