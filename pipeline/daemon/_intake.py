"""What the transport hands over: monitored chats' facts go to the log, nothing else does.

WhatsApp addresses one person by phone JID or by LID, and the owner by either
too. Here every fact is filed under the chat the config monitors, whichever id
it came by (the id used is kept as ``via``, where replies go), the owner's own
messages are recognised by all the owner's ids, and anything of a chat that is
not monitored, or of a status/broadcast/newsletter chat, is counted and dropped
before a byte of it is written anywhere, log lines included: transports never
log what they receive, so a fact's one debug line (ids only, never the text)
is written here, after the check (DESIGN.md sections 3 and 10). What is kept
is cut to the limits below.
An attachment is fetched only here, once its chat is known to be monitored.
"""

from __future__ import annotations

import hashlib

import msgspec

from events.model import (
    AccountRestricted,
    MessageEdited,
    MessageReceived,
    MessageRevoked,
    TransportStatus,
)
from events.protocol import Keyed
from pipeline.config import AppConfig, Entity, GroupEntity
from pipeline.daemon._fetch import fetch_media
from pipeline.daemon._holding import Holding
from pipeline.daemon._live import Live
from pipeline.daemon._settings import Settings
from pipeline.logs import get_logger
from pipeline.media import MediaStore
from pipeline.transport import Fact, Inbound
from projections import addresses, identity

log = get_logger("wabot.daemon")

# Never answered, never stored: a reply to status@broadcast posts a status.
_NOT_CHATS = frozenset({"broadcast", "newsletter"})
# What one message may add to the log: a longer text is recorded cut, with its
# original size (``truncated_from``); WhatsApp's own limit is about 65,000
# characters, so only the stdio transport or a misbehaving client gets here.
MAX_TEXT_BYTES = 64 * 1024
_MAX_NAME_CHARS = 256
_MAX_MENTIONS = 256


def monitored(app: AppConfig, owner: frozenset[str], ev: MessageReceived) -> Entity | None:
    """The entity a message belongs to, whichever of the chat's ids WhatsApp used."""
    if _server(ev.chat) in _NOT_CHATS:
        return None
    if ev.is_group:
        entity = app.find_entity(ev.chat)
        return entity if isinstance(entity, GroupEntity) else None
    ids = [ev.chat, ev.chat_alt, *([] if ev.from_me else [ev.sender_alt])]
    if any(i in owner for i in ids if i):
        return app.find_entity(app.owner_jid)  # the note-to-self chat, by any of its ids
    for jid in ids:
        entity = app.find_entity(jid) if jid else None
        if entity is not None and not isinstance(entity, GroupEntity):
            return entity
    return None


def filed(app: AppConfig, owner: frozenset[str], ev: MessageReceived) -> MessageReceived | None:
    """``ev`` filed under its monitored chat, the owner recognised; None: not ours."""
    entity = monitored(app, owner, ev)
    if entity is None:
        return None
    chat = app.entity_jid(entity)
    return msgspec.structs.replace(
        ev,
        chat=chat,
        via=ev.chat if ev.chat != chat else None,
        from_me=ev.from_me or ev.sender in owner,
    )


class Intake:
    def __init__(self, live: Live, settings: Settings, media: MediaStore) -> None:
        self.live = live
        self.settings = settings
        self.media = media
        self.dropped = 0  # facts of unmonitored chats: counted, never stored
        # What the log cannot take at once (its database is away) waits here.
        self.holding = Holding(live)

    def owner(self) -> frozenset[str]:
        """Every id of the owner known so far."""
        return identity.owner_forms(self.live.view.identity, self.settings.app.owner_jid)

    async def deliver(self, inbound: Inbound) -> None:
        keyed = self._keyed(inbound.event)
        if keyed is None:
            self.dropped += 1
            return
        fact = keyed.event
        if isinstance(fact, MessageReceived | MessageEdited):
            # Never the text: logs outlive ``forget`` and rotation, the log's events do not.
            log.debug(type(fact).__name__, chat=fact.chat, msg_id=fact.msg_id)
        if isinstance(fact, MessageReceived) and fact.media is not None:
            fetched = await fetch_media(fact, inbound.media, self.settings.app.media, self.media)
            keyed = Keyed(fetched, keyed.key)
        await self.holding.record(keyed)

    async def run(self) -> None:
        """Append what was held while the log could not take it; forever."""
        await self.holding.run()

    def _keyed(self, fact: Fact) -> Keyed | None:
        """The fact as recorded, with the key that makes a redelivery a no-op."""
        if isinstance(fact, MessageReceived):
            ev = filed(self.settings.app, self.owner(), fact)
            return None if ev is None else Keyed(bounded(ev), f"{ev.chat}/{ev.msg_id}")
        chat = self._chat_of(fact.chat)
        if chat is None:
            return None
        if isinstance(fact, MessageEdited):
            change = fact.edit_id or hashlib.sha256((fact.text or "").encode()).hexdigest()[:16]
            key = f"{chat}/{fact.msg_id}/edit/{change}"
            text, size = _cut(fact.text or "")
            cut = {"text": text, "truncated_from": size} if size is not None else {}
            return Keyed(msgspec.structs.replace(fact, chat=chat, **cut), key)
        assert isinstance(fact, MessageRevoked)
        return Keyed(msgspec.structs.replace(fact, chat=chat), f"{chat}/{fact.msg_id}/revoke")

    def _chat_of(self, jid: str) -> str | None:
        """The monitored chat an edit or revoke names by one of its ids."""
        app = self.settings.app
        if _server(jid) in _NOT_CHATS:
            return None
        if jid in self.owner():
            return app.owner_jid if app.find_entity(app.owner_jid) is not None else None
        entity = app.find_entity(jid)
        if entity is not None:
            return app.entity_jid(entity)
        return addresses.chat_of(self.live.view.addresses, jid)

    async def status(self, status: TransportStatus | AccountRestricted) -> None:
        if isinstance(status, AccountRestricted):
            log.warning("account_restricted", code=status.code, until=status.until)
        else:
            log.info("transport", state=status.state, detail=status.detail)
        await self.holding.record(status)


def _server(jid: str) -> str:
    return jid.rpartition("@")[2]


def bounded(event: MessageReceived) -> MessageReceived:
    """``event`` as it is recorded: texts, display name and mentions cut to their limits."""
    changes: dict[str, object] = {}
    text, size = _cut(event.text)
    if size is not None:
        changes |= {"text": text, "truncated_from": size}
    if event.quoted is not None and _cut(event.quoted.text)[1] is not None:
        changes["quoted"] = msgspec.structs.replace(event.quoted, text=_cut(event.quoted.text)[0])
    if event.push_name is not None and len(event.push_name) > _MAX_NAME_CHARS:
        changes["push_name"] = event.push_name[:_MAX_NAME_CHARS]
    if len(event.mentions) > _MAX_MENTIONS:
        changes["mentions"] = event.mentions[:_MAX_MENTIONS]
    media = event.media
    if media is not None and max(len(media.mime), len(media.file_name or "")) > _MAX_NAME_CHARS:
        name = media.file_name[:_MAX_NAME_CHARS] if media.file_name else None
        changes["media"] = msgspec.structs.replace(
            media, mime=media.mime[:_MAX_NAME_CHARS], file_name=name
        )
    return msgspec.structs.replace(event, **changes) if changes else event


def _cut(text: str) -> tuple[str, int | None]:
    """``text`` cut to MAX_TEXT_BYTES of UTF-8, and its original size if it was cut."""
    # Four bytes at most per character: a shorter text cannot be over the limit.
    if len(text) * 4 <= MAX_TEXT_BYTES:
        return text, None
    data = text.encode()
    if len(data) <= MAX_TEXT_BYTES:
        return text, None
    # "ignore" drops a character the cut split in two.
    return data[:MAX_TEXT_BYTES].decode(errors="ignore"), len(data)
