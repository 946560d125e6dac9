"""neonize's protobuf messages to and from our plain values.

neonize ships no type information, so its objects are ``Any`` here and in the
transport, nowhere else: everything this module returns is one of our types.

``inbound`` is the one conversion of a received ``MessageEv``, used by the
transport and by ``python -m pipeline inbound`` alike; ``undecryptable`` the
one of an ``UndecryptableMessageEv``. A text that is not UTF-8 is mended
first (``_readable``), and what a message wraps is opened (``_wrappers``);
then it is one of: a message with content, an edit or revoke (a
``protocolMessage``), an edit encrypted with the original's message secret
(``secretEncryptedMessage``, decrypted by the caller), or something with
nothing to answer, dropped with its reason (reactions, key shares, status
posts, ...). A contact's message to a broadcast list is read as one in the
1:1 chat with them, where WhatsApp's apps show it. Nothing here logs: the
chat may not be monitored.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import msgspec
from google.protobuf.message import DecodeError
from neonize.proto.Neonize_pb2 import JID
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import (
    AudioMessage,
    ContextInfo,
    ExtendedTextMessage,
    Message,
    ProtocolMessage,
    SecretEncryptedMessage,
)
from neonize.utils.jid import Jid2String, JIDToNonAD

from events.jid import PN_SERVER, InvalidJid, normalize
from events.model import (
    MessageEdited,
    MessageReceived,
    MessageRevoked,
    MessageUndecryptable,
    Quoted,
    TimerChanged,
)
from pipeline.media import message_kind
from pipeline.transport._base import Fact, Outgoing, received_message
from pipeline.transport.neonize._content import Content, content_of
from pipeline.transport.neonize._media import media_of
from pipeline.transport.neonize._readable import readable
from pipeline.transport.neonize._secret import Secrets
from pipeline.transport.neonize._wrappers import unwrap

_MILLIS_PER_SECOND = 1000
# WhatsApp's bots, as whatsmeow's JID.IsBot tells them: ``…@bot``, or these numbers.
_BOT_SERVER = "bot"
_BOT_NUMBER = re.compile(r"1313555\d{4}|131655500\d{2}")
# ``status@broadcast`` holds status posts; any other ``…@broadcast`` is a broadcast list.
_BROADCAST_SERVER = "broadcast"
_STATUS_USER = "status"

# Top-level fields of a message with nothing to answer, and the reason it is dropped.
DROPPED: dict[str, str] = {
    "reactionMessage": "reaction",
    "encReactionMessage": "reaction",
    "pollUpdateMessage": "poll_vote",
    "encEventResponseMessage": "event_response",
    "pinInChatMessage": "pin",
    "keepInChatMessage": "keep_in_chat",
    # An album's header; its photos and videos come as messages of their own.
    "albumMessage": "album",
    # Status posts, and mentions of the owner in them: nobody wrote to the chat.
    "statusMentionMessage": "status",
    "groupStatusMentionMessage": "status",
    "groupStatusMessage": "status",
    "groupStatusMessageV2": "status",
    "statusAddYours": "status",
}
# Sent beside content in a group's first messages; alone they are only keys.
_KEYS = frozenset({"senderKeyDistributionMessage", "fastRatchetKeySenderKeyDistributionMessage"})
_PROTOCOL = {
    ProtocolMessage.APP_STATE_SYNC_KEY_SHARE: "key_share",
    ProtocolMessage.HISTORY_SYNC_NOTIFICATION: "history_sync",
}


class Dropped(NamedTuple):
    """A received event with nothing to record, and why (``inbound``'s ``dropped`` line)."""

    reason: str


class Me(NamedTuple):
    """The owner's own ids as the connection reports them (``client.me``); None: unknown.

    whatsmeow already marks the owner's messages (``IsFromMe``) by both; here
    they name a note-to-self chat's other id when WhatsApp sends neither alt.
    """

    pn: str | None = None
    lid: str | None = None

    def other(self, jid: str) -> str | None:
        """The owner's other id when ``jid`` is one of them (note to self)."""
        if jid == self.pn:
            return self.lid
        return self.pn if jid == self.lid else None


NOBODY = Me()


class SecretEdit(NamedTuple):
    """An edit encrypted with the original message's secret: decrypt, then ``edited``."""

    chat: str
    msg_id: str  # the message edited
    editor: str  # who edited it (non-AD JID)
    payload: bytes
    iv: bytes
    edit_id: str
    editor_alt: str | None = None  # the editor's other id, when WhatsApp sent it
    from_me: bool = False  # edited by the owner


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
    """The message secret a later encrypted edit of this message is keyed with.

    The innermost one a wrapper holds, else the wrapper's (whatsmeow copies the
    outer ``messageContextInfo`` inwards the same way).
    """
    for part in reversed(unwrap(message) or [message]):
        if part.HasField("messageContextInfo") and part.messageContextInfo.messageSecret:
            secret: bytes = part.messageContextInfo.messageSecret
            return secret
    return b""


def inbound(ev: Any, me: Me = NOBODY) -> Fact | SecretEdit | Dropped:
    """What a ``MessageEv`` is for us: a fact, an edit still to decrypt, or dropped."""
    ev = readable(ev)
    in_dm = _in_senders_chat(ev)
    if in_dm is None:
        return _inbound(ev, me)
    return _listed(_inbound(in_dm, me))


def _inbound(ev: Any, me: Me) -> Fact | SecretEdit | Dropped:
    reason = _not_a_chat(ev.Info.MessageSource.Chat) or _not_a_person(ev.Info.MessageSource)
    if reason is not None:
        return Dropped(reason)
    chain = unwrap(ev.Message)
    if chain is None:
        return Dropped("too_deep")
    message = chain[-1]
    try:
        chat = normalize(Jid2String(ev.Info.MessageSource.Chat))
        if message.HasField("protocolMessage"):
            return _protocol(chat, message.protocolMessage, ev.Info)
        if message.HasField("secretEncryptedMessage"):
            return _secret_edit(chat, message.secretEncryptedMessage, ev.Info)
        received = _received(ev, message, me)
    except InvalidJid:
        return Dropped("invalid_jid")  # a chat or person we cannot name is not one we monitor
    return received if received is not None else _dropped(message)


def undecryptable(ev: Any) -> MessageUndecryptable | Dropped:
    """An ``UndecryptableMessageEv``: a message that reached this device without content.

    whatsmeow emits it with ``IsUnavailable`` when WhatsApp sent this device
    no ciphertext at all, as it does for view-once media on linked devices (an
    ``<unavailable type="view_once">`` stanza), and without it when the
    ciphertext did not decrypt (whatsmeow then asks the sender to send it
    again, so the message itself may follow with the same id). whatsmeow also
    reports the unavailable type, but neonize 0.5.2's event has no field for
    it (Info, IsUnavailable, DecryptFailMode only): view-once cannot be told
    from other withheld messages, so both are ``unavailable``.
    """
    ev = readable(ev)
    ev = _in_senders_chat(ev) or ev
    source = ev.Info.MessageSource
    reason = _not_a_chat(source.Chat) or _not_a_person(source)
    if reason is not None:
        return Dropped(reason)
    try:
        chat = normalize(Jid2String(source.Chat))
        sender, alt, from_me = _sender_of(chat, source)
        return MessageUndecryptable(
            chat=chat,
            msg_id=ev.Info.ID,
            sender=sender,
            reason="unavailable" if ev.IsUnavailable else "decrypt_failed",
            sender_alt=alt,
            is_group=source.IsGroup,
            from_me=from_me,
            sent_at=ev.Info.Timestamp / _MILLIS_PER_SECOND,
            detail=_why_undecryptable(ev),
        )
    except InvalidJid:
        return Dropped("invalid_jid")


def _why_undecryptable(ev: Any) -> str:
    if ev.IsUnavailable:
        return (
            "WhatsApp sent this linked device no copy of it"
            " (as it does for view-once media, which only the phone receives)"
        )
    hidden = ev.DecryptFailMode == ev.DECRYPT_FAIL_HIDE
    shown = "; the sender's app shows no placeholder for it" if hidden else ""
    return f"it could not be decrypted; WhatsApp asks the sender to send it again{shown}"


def _in_senders_chat(ev: Any) -> Any | None:
    """A contact's message to a broadcast list the owner is on, as the same event in
    the 1:1 chat with them; None for any other event (the owner's own list posts too).

    WhatsApp's apps show it there, and a reply belongs there: a send to the list's
    id would go to everyone on it. whatsmeow delivers it under the list
    (``<id>@broadcast``, ``IsGroup`` true, the contact in ``Sender``, ``SenderAlt``
    often empty: whatsmeow #1262); mautrix-whatsapp (#411) files it in the DM too.
    So it, and its edits and revokes, are read as a DM from ``Sender`` would be.
    """
    source = ev.Info.MessageSource
    chat = source.Chat
    listed = chat.Server == _BROADCAST_SERVER and chat.User != _STATUS_USER
    if not listed or source.IsFromMe or not source.Sender.User:
        return None
    dm = type(ev)()
    dm.CopyFrom(ev)
    dm.Info.MessageSource.Chat.CopyFrom(JIDToNonAD(source.Sender))
    dm.Info.MessageSource.IsGroup = False
    return dm


def _listed(fact: Fact | SecretEdit | Dropped) -> Fact | SecretEdit | Dropped:
    """What of a list's message holds in the sender's chat: the timer it carries need
    not be that chat's, so it says nothing of it (None keeps the chat's timer)."""
    if isinstance(fact, TimerChanged):
        return Dropped("broadcast_list")
    if isinstance(fact, MessageReceived) and fact.expiration is not None:
        return msgspec.structs.replace(fact, expiration=None)
    return fact


def _not_a_chat(chat: Any) -> str | None:
    """Never answered, never stored: a send to status@broadcast posts a status."""
    if chat.Server == _BROADCAST_SERVER:
        return "status" if chat.User == _STATUS_USER else "broadcast_list"
    return "newsletter" if chat.Server == "newsletter" else None


def _not_a_person(source: Any) -> str | None:
    """A bot's message: Meta AI answering ``@Meta AI`` in a chat, or another of WhatsApp's
    bots. whatsmeow files it under the chat it answered in (``target_chat_jid``) with the
    bot as sender and ``IsGroup`` unset even in a group: the contact never wrote it, and
    answering it would have two AIs talk on the owner's account."""
    sender = source.Sender
    if sender.Server == _BOT_SERVER:
        return "bot"
    bot_number = sender.Server == PN_SERVER and _BOT_NUMBER.fullmatch(sender.User)
    return "bot" if bot_number and not sender.Device else None


def _protocol(chat: str, pm: Any, info: Any) -> Fact | Dropped:
    # REVOKE is 0, the default of an unset enum: only a set type counts.
    if not pm.HasField("type"):
        return Dropped("protocol_untyped")
    edits = (ProtocolMessage.REVOKE, ProtocolMessage.MESSAGE_EDIT)
    if pm.type in edits and not pm.key.ID:
        return Dropped("protocol_without_key")
    if pm.type == ProtocolMessage.REVOKE:
        return MessageRevoked(chat=chat, msg_id=pm.key.ID)
    if pm.type == ProtocolMessage.EPHEMERAL_SETTING:
        # The one message that says a timer went off: later ones carry nothing then.
        if not info.ID:
            return Dropped("protocol_without_key")
        return TimerChanged(chat=chat, msg_id=info.ID, expiration=pm.ephemeralExpiration)
    if pm.type == ProtocolMessage.MESSAGE_EDIT:
        # Who sent it, never the key's ``participant``: that names the original's
        # author, and anyone can write it (only the author's own edit counts).
        editor, editor_alt, from_me = _sender_of(chat, info.MessageSource)
        return MessageEdited(
            chat=chat,
            msg_id=pm.key.ID,
            text=_text_of(pm.editedMessage),
            edit_id=info.ID or None,
            editor=editor,
            editor_alt=editor_alt,
            from_me=from_me,
        )
    known = _PROTOCOL.get(pm.type)
    return Dropped(known or f"protocol_{ProtocolMessage.Type.Name(pm.type).lower()}")


def _secret_edit(chat: str, sem: Any, info: Any) -> SecretEdit | Dropped:
    kind = sem.secretEncType
    if kind != SecretEncryptedMessage.MESSAGE_EDIT:
        # Poll and event edits, added poll options: keyed to messages with nothing to answer.
        name = SecretEncryptedMessage.SecretEncType.Name(kind).lower()
        return Dropped(f"secret_{name}")
    if not sem.targetMessageKey.ID:
        return Dropped("protocol_without_key")
    editor, editor_alt, from_me = _sender_of(chat, info.MessageSource)
    return SecretEdit(
        chat,
        sem.targetMessageKey.ID,
        editor,
        sem.encPayload,
        sem.encIV,
        info.ID or "",
        editor_alt,
        from_me,
    )


def _sender_of(chat: str, source: Any) -> tuple[str, str | None, bool]:
    """Who sent an event (an edit, an undecryptable message): the id (the chat's in a
    DM that names no sender), its other form, and whether it was the owner."""
    alt = jid(source.SenderAlt)
    editor = normalize(jid(source.Sender) or chat)
    return editor, normalize(alt) if alt else None, source.IsFromMe


def edited(pending: SecretEdit, plaintext: bytes | None) -> MessageEdited:
    """The edit, from its decrypted payload (None: it could not be decrypted)."""
    text: str | None = None
    if plaintext is not None:
        try:
            decrypted = readable(Message.FromString(plaintext))
        except DecodeError:  # it decrypted, yet holds no message: unreadable all the same
            decrypted = Message()
        inner = (
            decrypted.protocolMessage.editedMessage
            if decrypted.HasField("protocolMessage")
            else decrypted
        )
        text = _text_of(inner)
    return MessageEdited(
        chat=pending.chat,
        msg_id=pending.msg_id,
        text=text,
        edit_id=pending.edit_id or None,
        editor=pending.editor,
        editor_alt=pending.editor_alt,
        from_me=pending.from_me,
    )


def with_secrets(fact: Fact | SecretEdit, ev: Any, secrets: Secrets) -> Fact:
    """An encrypted edit decrypted with the secret of the message it edits (seen before)."""
    if isinstance(fact, SecretEdit):
        return edited(fact, secrets.decrypt(fact.msg_id, fact.editor, fact.iv, fact.payload))
    return fact


def remember_secret(secrets: Secrets, ev: Any, fact: MessageReceived) -> None:
    """A received message's own secret, kept for its later edits."""
    senders = (fact.sender, fact.sender_alt)
    secrets.remember(ev.Info.ID, secret_of(ev.Message), senders, fact.chat)


def _text_of(message: Any) -> str | None:
    chain = unwrap(message)
    content = content_of(chain[-1]) if chain is not None else None
    return content.text if content is not None else None


def _received(ev: Any, message: Any, me: Me) -> MessageReceived | None:
    """A content-bearing message as ``MessageReceived``; None when it has nothing."""
    content = content_of(message)
    if content is None:
        return None
    info = ev.Info
    source = info.MessageSource
    chat = normalize(Jid2String(source.Chat))
    sender = jid(source.Sender)
    media = media_of(message)
    return received_message(
        chat=chat,
        msg_id=info.ID,
        text=content.text,
        sent_at=info.Timestamp / _MILLIS_PER_SECOND,
        sender=sender,
        # whatsmeow sets it by comparing the sender with the owner's phone JID and LID.
        from_me=source.IsFromMe,
        push_name=info.Pushname or None,
        # Always present on the wire; an empty User means there is none.
        sender_alt=jid(source.SenderAlt),
        kind=content.kind if media is None else message_kind(media.kind),
        quoted=_quoted(content.context),
        mentions=_mentions(content.context),
        chat_alt=None if source.IsGroup else _chat_alt(source, chat, me),
        is_group=source.IsGroup,
        media=media,
        expiration=_expiration(content),
    )


def _chat_alt(source: Any, chat: str, me: Me) -> str | None:
    """The DM's other id: the sender's, or for the owner's own messages the recipient's
    (whatsmeow sets RecipientAlt then, never SenderAlt); for a note to self WhatsApp
    may send neither, and the owner's other id is known."""
    alt = jid(source.RecipientAlt if source.IsFromMe else source.SenderAlt)
    return alt or me.other(chat)


def _expiration(content: Content) -> int | None:
    """The chat's disappearing timer as the message carries it (``contextInfo.expiration``).

    Current WhatsApp apps put the chat's timer into every message they send
    (WhatsApp Web without the ``ephemeralMessage`` wrapper whatsmeow reports as
    ``IsEphemeral``, so the wrapper proves nothing); a timer switched off is
    sent as its own protocol message (EPHEMERAL_SETTING). A message without
    the field was sent by an app that left it out (a plain ``conversation``
    cannot hold it; WhatsApp marks such messages "will not disappear, the
    sender may be on an old version"), not by one that turned the timer off:
    so an absent field is None (unknown, the chat's timer stays as it was),
    never 0. A present 0 says the sender's timer is off.
    """
    context = content.context
    if context is None or not context.HasField("expiration"):
        return None
    expiration: int = context.expiration
    return expiration


def _dropped(message: Any) -> Dropped:
    names = [f.name for f, _ in message.ListFields() if f.name != "messageContextInfo"]
    reasons = [DROPPED[n] for n in names if n in DROPPED]
    if reasons:
        return Dropped(reasons[0])
    unknown = [
        n for n in names if n not in _KEYS and n not in ("conversation", "extendedTextMessage")
    ]
    if unknown:
        return Dropped(f"unsupported: {', '.join(unknown)}")
    if any(n in _KEYS for n in names):
        return Dropped("key_share")
    return Dropped("empty")


def _quoted(context: Any) -> Quoted | None:
    if context is None or not context.stanzaID:
        return None
    text = _text_of(context.quotedMessage) if context.HasField("quotedMessage") else None
    return Quoted(
        id=context.stanzaID,
        text=text or "",
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
    if message.quoted is None and not message.expiration:
        return Message(conversation=message.text)
    context = _context(message)
    return Message(extendedTextMessage=ExtendedTextMessage(text=message.text, contextInfo=context))


def voice_message(message: Outgoing, upload: Any) -> Any:
    """A voice reply as WhatsApp's push-to-talk ``audioMessage`` of the uploaded file
    (neonize's ``UploadResponse``), with its length and bars, quoting as text would."""
    voice = message.voice
    assert voice is not None
    audio = AudioMessage(
        URL=upload.url,
        directPath=upload.DirectPath,
        mediaKey=upload.MediaKey,
        fileEncSHA256=upload.FileEncSHA256,
        fileSHA256=upload.FileSHA256,
        fileLength=upload.FileLength,
        mimetype=voice.mime,
        seconds=voice.seconds,
        PTT=True,
    )
    if voice.waveform:
        audio.waveform = voice.waveform
    if message.quoted is not None or message.expiration:
        audio.contextInfo.CopyFrom(_context(message))
    return Message(audioMessage=audio)


def _context(message: Outgoing) -> Any:
    """The quote's id, author and text, and the chat's timer."""
    context = ContextInfo()
    quoted = message.quoted
    if quoted is not None:
        context.stanzaID = quoted.id
        context.quotedMessage.CopyFrom(Message(conversation=quoted.text))
        if quoted.sender:
            context.participant = quoted.sender
    if message.expiration:
        context.expiration = message.expiration
    return context
