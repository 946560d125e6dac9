"""What the transport hands over: monitored chats' facts go to the log, nothing else does.

WhatsApp addresses one person by phone JID or by LID, and the owner by either
too. Here every fact is filed under the chat the config monitors, whichever id
it came by (the id used is kept as ``via``, where replies go), the owner's own
messages are recognised by all the owner's ids, and anything of a chat that is
not monitored, or of a status/broadcast/newsletter chat, is counted and dropped
before a byte of it is written anywhere, log lines included: transports never
log what they receive, so a fact's one debug line (ids only, never the text)
is written here, after the check (docs/events.md, docs/whatsapp.md). What is kept
is cut to the limits below.
An attachment is fetched only here, once its chat is known to be monitored:
bytes that must be read or downloaded after the message is recorded, beside
intake (``_fetch``), each chat's fetches apart from every other chat's.
A message WhatsApp could not decrypt is filed as a message from the same ids
would be; receipts go to ``Receipts``, which keeps those of the bot's own sends.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import NamedTuple

import anyio
import msgspec

from events.model import (
    AccountRestricted,
    MediaFetched,
    MessageEdited,
    MessageReceived,
    MessageRevoked,
    MessageSkipped,
    MessageUndecryptable,
    ReplyDelivered,
    TimerChanged,
    TransportStatus,
)
from events.protocol import Keyed
from pipeline.config import AppConfig, Entity, GroupEntity
from pipeline.daemon import _lids as lids
from pipeline.daemon._fetch import FETCH_TIMEOUT, fetched, interrupted, on_arrival
from pipeline.daemon._folded_log import FoldedLog
from pipeline.daemon._outage_buffer import OutageBuffer
from pipeline.daemon._receipts import Receipts
from pipeline.daemon._settings import Settings
from pipeline.logs import get_logger
from pipeline.media import MediaSource, MediaStore
from pipeline.transport import Fact, Inbound
from projections import addresses, group_talk, identity, queue
from projections.fold import States

log = get_logger("wabot.daemon")

# Never answered, never stored: a reply to status@broadcast posts a status.
_NOT_CHATS = frozenset({"broadcast", "newsletter"})
# What one message may add to the log: a longer text is recorded cut, with its
# original size (``truncated_from``); WhatsApp's own limit is about 65,000
# characters, so only the stdio transport or a misbehaving client gets here.
MAX_TEXT_BYTES = 64 * 1024
_MAX_NAME_CHARS = 256
_MAX_MENTIONS = 256
# Fetches at once in one chat (an album); other chats have their own.
_FETCHES_PER_CHAT = 3


class _Fetch(NamedTuple):
    event: MessageReceived  # as recorded, ``media.fetching`` set
    source: MediaSource


def monitored(
    app: AppConfig, owner: frozenset[str], ev: MessageReceived, learned: Sequence[str] = ()
) -> Entity | None:
    """The entity a message belongs to, whichever of the chat's ids WhatsApp used;
    ``learned``: other ids of a direct chat, as earlier messages tied them to it."""
    if _server(ev.chat) in _NOT_CHATS:
        return None
    if ev.is_group:
        entity = app.find_entity(ev.chat)
        return entity if isinstance(entity, GroupEntity) else None
    ids = [ev.chat, ev.chat_alt, *([] if ev.from_me else [ev.sender_alt])]
    if any(i in owner for i in ids if i):
        return app.find_entity(app.owner_jid)  # the note-to-self chat, by any of its ids
    for jid in [*ids, *learned]:
        entity = app.find_entity(jid) if jid else None
        if entity is not None and not isinstance(entity, GroupEntity):
            return entity
    return None


def filed(
    app: AppConfig, owner: frozenset[str], ev: MessageReceived, learned: Sequence[str] = ()
) -> MessageReceived | None:
    """``ev`` filed under its monitored chat, the owner recognised; None: not ours."""
    entity = monitored(app, owner, ev, learned)
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
    def __init__(
        self,
        folded: FoldedLog,
        settings: Settings,
        media: MediaStore,
        *,
        fetch_timeout: float = FETCH_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.folded = folded
        self.settings = settings
        self.media = media
        self.fetch_timeout = fetch_timeout
        self.dropped = 0  # facts of unmonitored chats: counted, never stored
        # What the log cannot take at once (its database is away) waits here.
        self.buffer = OutageBuffer(folded)
        self._fetches: deque[_Fetch] = deque()
        self._more_fetches = anyio.Event()
        self._in_flight = 0  # fetches queued or running
        self._no_fetches = anyio.Event()
        # chat -> its fetches' lane and how many fetches hold it (it goes with the last)
        self._lanes: dict[str, tuple[anyio.CapacityLimiter, int]] = {}
        self.receipts = Receipts(folded, self.buffer.record, clock=clock)

    def owner(self) -> frozenset[str]:
        """Every id of the owner known so far."""
        return identity.owner_forms(self.folded.view.identity, self.settings.app.owner_jid)

    async def deliver(self, inbound: Inbound) -> bool:
        """Record ``inbound`` if its chat is monitored; True when it was (or is held to be).

        Returns once the fact is committed (or held while the log is away):
        never later, whatever its attachment does. A receipt is kept only for
        the bot's own sends (``Receipts``).
        """
        if isinstance(inbound.event, ReplyDelivered):
            await self.receipts.deliver(inbound.event)
            return True
        keyed = self._keyed(inbound.event)
        if keyed is None:
            await self._unresolved(inbound.event)
            return False
        fact = keyed.event
        if isinstance(fact, MessageReceived | MessageEdited | MessageUndecryptable | TimerChanged):
            # Never the text: logs outlive ``forget`` and rotation, the log's events do not.
            log.debug(type(fact).__name__, chat=fact.chat, msg_id=fact.msg_id)
        pending = None
        if isinstance(fact, MessageReceived) and fact.media is not None:
            app = self.settings.app
            fact, source = on_arrival(fact, inbound.media, app.media)
            if source is not None and source.in_hand:
                media = await fetched(fact, source, app.media, self.media)
                fact = msgspec.structs.replace(fact, media=media)
            elif source is not None:
                pending = _Fetch(fact, source)
            keyed = Keyed(fact, keyed.key)
        await self.buffer.record(keyed)
        if pending is not None:
            self._in_flight += 1
            self._fetches.append(pending)
            self._more_fetches.set()
        return True

    async def fetched(self) -> None:
        """Wait until no attachment is being fetched (a stop lets them finish)."""
        while self._in_flight:
            await self._no_fetches.wait()

    async def run(self) -> None:
        """Append what was held while the log could not take it, and fetch what
        recorded messages still lack; forever."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.buffer.run)
            while True:
                await self._more_fetches.wait()
                self._more_fetches = anyio.Event()
                while self._fetches:
                    tg.start_soon(self._fetch, self._fetches.popleft())

    async def _fetch(self, job: _Fetch) -> None:
        ev = job.event
        lane, users = self._lanes.get(ev.chat) or (anyio.CapacityLimiter(_FETCHES_PER_CHAT), 0)
        self._lanes[ev.chat] = (lane, users + 1)
        try:
            async with lane:
                media = await fetched(
                    ev, job.source, self.settings.app.media, self.media, timeout=self.fetch_timeout
                )
            done = MediaFetched(chat=ev.chat, msg_id=ev.msg_id, media=media)
            await self.buffer.record(Keyed(done, _fetched_key(ev.chat, ev.msg_id)))
        finally:
            lane, users = self._lanes[ev.chat]
            if users > 1:
                self._lanes[ev.chat] = (lane, users - 1)
            else:
                del self._lanes[ev.chat]
            self._in_flight -= 1
            if not self._in_flight:
                self._no_fetches.set()
                self._no_fetches = anyio.Event()

    def interrupted(self) -> list[Keyed]:
        """The fetches a previous run started and never finished, as failed: the
        source went with that process. For start-up, before intake runs."""
        return [
            Keyed(
                MediaFetched(chat=chat, msg_id=item.message.msg_id, media=interrupted(item.media)),
                _fetched_key(chat, item.message.msg_id),
            )
            for chat in queue.chats_with_work(self.folded.view.queue)
            for item in queue.pending(self.folded.view.queue, chat)
            if item.media is not None and item.media.fetching
        ]

    async def _unresolved(self, fact: Fact) -> None:
        """Not ours, or a LID nothing has tied to a chat yet: then its trace is kept."""
        app, view = self.settings.app, self.folded.view
        if not (
            isinstance(fact, MessageReceived)
            and lids.unnamed_lid(fact)
            and lids.some_lid_unknown(app, view)
        ):
            self.dropped += 1
            return
        # The LID and the id only: no words, no name (it may be nobody's we watch).
        skip = MessageSkipped(chat=fact.chat, msg_id=fact.msg_id, reason=lids.UNRESOLVED)
        log.info("message_from_an_unknown_lid", hint="stats lists it; see README")
        await self.buffer.record(Keyed(skip, f"{fact.chat}/{fact.msg_id}/{lids.UNRESOLVED}"))

    def _keyed(self, fact: Fact) -> Keyed | None:
        """The fact as recorded, with the key that makes a redelivery a no-op."""
        if isinstance(fact, MessageReceived):
            learned = () if fact.is_group else lids.learned(self.folded.view, fact.chat)
            ev = filed(self.settings.app, self.owner(), fact, learned)
            return None if ev is None else Keyed(bounded(ev), f"{ev.chat}/{ev.msg_id}")
        if isinstance(fact, MessageUndecryptable):
            return self._undecryptable(fact)
        assert not isinstance(fact, ReplyDelivered)  # see deliver
        chat = self._chat_of(fact.chat)
        if chat is None:
            return None
        if isinstance(fact, MessageEdited):
            return self._edit(fact, chat)
        if isinstance(fact, TimerChanged):
            return Keyed(msgspec.structs.replace(fact, chat=chat), f"{chat}/{fact.msg_id}/timer")
        assert isinstance(fact, MessageRevoked)
        return Keyed(msgspec.structs.replace(fact, chat=chat), f"{chat}/{fact.msg_id}/revoke")

    def _edit(self, fact: MessageEdited, chat: str) -> Keyed:
        """The edit as recorded, whoever made it, with the editor's ids as far as the
        log knows them: only the message's author's edit changes its words (the
        projections ask ``MessageEdited.by_author``), so anyone else's is logged here."""
        editor, alt = fact.editor, fact.editor_alt
        if editor is not None and alt is None:
            # WhatsApp named the editor one way only; an earlier message may have tied both.
            alt = next(iter(lids.learned(self.folded.view, editor)), None)
        owner = self.owner()
        text, size = _cut(fact.text or "")
        cut = {"text": text, "truncated_from": size} if size is not None else {}
        event = msgspec.structs.replace(
            fact,
            chat=chat,
            editor_alt=alt,
            from_me=fact.from_me or any(i in owner for i in (editor, alt) if i),
            **cut,
        )
        if not _by_author(self.folded.view, event):
            log.warning(
                "edit_by_someone_else_ignored",
                chat=chat,
                msg_id=fact.msg_id,
                editor=editor,
                hint="recorded; only a message's author may edit it, so its words stay",
            )
        # Without WhatsApp's id, the words (and who wrote them) tell one edit from another.
        words = fact.text or ""
        said = words if editor is None else f"{editor}\n{words}"
        change = fact.edit_id or hashlib.sha256(said.encode()).hexdigest()[:16]
        return Keyed(event, f"{chat}/{fact.msg_id}/edit/{change}")

    def _undecryptable(self, fact: MessageUndecryptable) -> Keyed | None:
        """Filed as a message from the same ids would be; its own key, so the message
        itself is still recorded if WhatsApp delivers it readable later (a retry)."""
        probe = MessageReceived(
            chat=fact.chat,
            msg_id=fact.msg_id,
            sender=fact.sender,
            sender_alt=fact.sender_alt,
            from_me=fact.from_me,
            is_group=fact.is_group,
        )
        learned = () if fact.is_group else lids.learned(self.folded.view, fact.chat)
        ev = filed(self.settings.app, self.owner(), probe, learned)
        chat = ev.chat if ev is not None else self._chat_of(fact.chat)
        if chat is None:
            return None
        event = msgspec.structs.replace(
            fact,
            chat=chat,
            via=fact.chat if fact.chat != chat else None,
            from_me=ev.from_me if ev is not None else fact.from_me,
            detail=fact.detail[:_MAX_NAME_CHARS],
        )
        return Keyed(event, f"{chat}/{fact.msg_id}/undecryptable")

    def _chat_of(self, jid: str) -> str | None:
        """The monitored chat an edit, a revoke or a timer change names by one of its ids."""
        app = self.settings.app
        if _server(jid) in _NOT_CHATS:
            return None
        if jid in self.owner():
            return app.owner_jid if app.find_entity(app.owner_jid) is not None else None
        entity = app.find_entity(jid)
        if entity is not None:
            return app.entity_jid(entity)
        return addresses.chat_of(self.folded.view.addresses, jid)

    async def status(self, status: TransportStatus | AccountRestricted) -> None:
        if isinstance(status, AccountRestricted):
            log.warning("account_restricted", code=status.code, until=status.until)
        else:
            log.info("transport", state=status.state, detail=status.detail)
        await self.buffer.record(status)


def _fetched_key(chat: str, msg_id: str) -> str:
    return f"{chat}/{msg_id}/media"


def _by_author(view: States, ev: MessageEdited) -> bool:
    """Whether the message ``ev`` edits was written by its editor; True when the
    message is neither waiting for an answer nor in a group's recent talk (the
    edit changes nothing there either way)."""
    item = queue.item(view.queue, ev.chat, ev.msg_id)
    if item is not None:
        m = item.message
        return ev.by_author(m.sender, m.sender_alt, m.from_me)
    heard = group_talk.heard(view.group_talk, ev.chat, ev.msg_id)
    return heard is None or ev.by_author(heard.sender, heard.sender_alt, heard.from_me)


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
