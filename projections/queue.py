"""Inbound messages that still need a decision, per chat in log order.

An item holds the ``MessageReceived`` itself, never copied or changed, and
only what the queue adds to it. It leaves the queue when the agent decides
about it: a skip, a final LLM failure, a planned reply, or a reply withheld
(the model stayed silent). An answer that calls tools is a round of the turn,
not its answer: the items stay requested under the next round's call. A
retryable failure leaves it queued. An edit by the message's author before the
LLM is asked replaces the item's ``text`` (anyone else's changes nothing,
``MessageEdited.by_author``); a revoke marks the item, and the agent records the skip.
An attachment fetched after its message was recorded (``MediaFetched``)
replaces the item's ``media``; until then the item waits for it. A transcript
or a document's text joins its item, so the turn (and its replay) reads it
from here. Only ``purpose="reply"`` plans and the answers to owner commands
(``command``) drain the queue: a debug note planned for the same chat (the
owner's own chat) before the LLM call must not.

A ``Compacted`` drops the items whose message went, and the answers waiting
for them. What a removed later event did to a surviving item (an edit, a
skip) stays done: a compaction never brings back a message already decided.
A rotation also retires what it kept but did not remove (a message that ties
a person's ids): its decision may be gone, so a refold must not answer it again.
"""

from __future__ import annotations

import math
from typing import Literal

import msgspec

from events.model import (
    Citation,
    Compacted,
    DocumentRead,
    LlmCompleted,
    LlmFailed,
    LlmRequested,
    Media,
    MediaFetched,
    MediaTranscribed,
    MessageEdited,
    MessageReceived,
    MessageRevoked,
    MessageSkipped,
    Recorded,
    ReplyPlanned,
    ReplyWithheld,
)
from projections.base import Handlers, Projection, removal

Status = Literal["pending", "requested", "answered"]
# The plans that decide the messages they answer: a reply, and an owner command's answer.
_ANSWERS = frozenset({"reply", "command"})


# Positional, not ``kw_only``: ``_received`` builds one per message, and three
# positional arguments cost a fraction of matching keywords. (A comment, not the
# docstring: the docstring is part of the snapshot's shape, ``fold.SNAPSHOT_VERSION``.)
class Item(msgspec.Struct, gc=False):
    """One inbound message awaiting a decision; ``ts`` is when the log recorded it."""

    seq: int
    ts: float
    message: MessageReceived  # the event as recorded, never changed
    status: Status = "pending"
    call_id: str | None = None
    revoked: bool = False  # deleted by its sender before an answer was planned
    edited: str | None = None  # the sender's new words, edited before the LLM was asked
    fetched: Media | None = None  # the attachment, fetched after the message was recorded
    transcript: str | None = None  # of a voice note or audio message
    document: DocumentRead | None = None  # a document's text, as read for the model

    @property
    def text(self) -> str:
        """The words the turn goes out with: the edit's, else the message's."""
        return self.message.text if self.edited is None else self.edited

    @property
    def media(self) -> Media | None:
        """The attachment as it stands: fetched later, else as the message carried it."""
        return self.message.media if self.fetched is None else self.fetched


class Completion(msgspec.Struct, kw_only=True, gc=False):
    """An LLM answer whose reply is not planned yet."""

    content: str
    citations: list[Citation]
    seq: int
    ts: float = 0.0
    chat: str = ""


class State(msgspec.Struct, kw_only=True):
    # chat -> msg_id -> item; dicts keep insertion (= log) order, and a chat
    # is dropped once empty, so chat order is the order of their oldest item.
    chats: dict[str, dict[str, Item]] = {}
    completions: dict[str, Completion] = {}


def _received(state: State, rec: Recorded, ev: MessageReceived) -> None:
    items = state.chats.get(ev.chat)
    if items is None:
        items = state.chats[ev.chat] = {}
    elif ev.msg_id in items:
        return
    items[ev.msg_id] = Item(rec.seq, rec.ts, ev)


def _fetched(state: State, rec: Recorded, ev: MediaFetched) -> None:
    item = state.chats.get(ev.chat, {}).get(ev.msg_id)
    if item is not None:
        item.fetched = ev.media


def _transcribed(state: State, rec: Recorded, ev: MediaTranscribed) -> None:
    item = state.chats.get(ev.chat, {}).get(ev.msg_id)
    if item is not None:
        item.transcript = ev.text


def _read(state: State, rec: Recorded, ev: DocumentRead) -> None:
    item = state.chats.get(ev.chat, {}).get(ev.msg_id)
    if item is not None:
        item.document = ev


def _edited(state: State, rec: Recorded, ev: MessageEdited) -> None:
    item = state.chats.get(ev.chat, {}).get(ev.msg_id)
    if item is None or ev.text is None or item.status != "pending":
        return
    message = item.message
    if ev.by_author(message.sender, message.sender_alt, message.from_me):
        # Not asked yet: the turn goes out with the words the sender settled on.
        item.edited = ev.text


def _revoked(state: State, rec: Recorded, ev: MessageRevoked) -> None:
    item = state.chats.get(ev.chat, {}).get(ev.msg_id)
    if item is not None:
        item.revoked = True


def _skipped(state: State, rec: Recorded, ev: MessageSkipped) -> None:
    items = state.chats.get(ev.chat)
    if items is None:
        return
    item = items.pop(ev.msg_id, None)
    if item is None:
        return
    call_id = item.call_id
    if call_id is not None and all(i.call_id != call_id for i in items.values()):
        # Every message of that call was skipped: no reply will claim its answer.
        state.completions.pop(call_id, None)
    if not items:
        del state.chats[ev.chat]


def _requested(state: State, rec: Recorded, ev: LlmRequested) -> None:
    items = state.chats.get(ev.chat)
    if items is None:
        return
    for msg_id in ev.trigger_ids:
        item = items.get(msg_id)
        if item is not None:
            item.status = "requested"
            item.call_id = ev.call_id


def _failed(state: State, rec: Recorded, ev: LlmFailed) -> None:
    if not ev.final:
        return
    state.completions.pop(ev.call_id, None)
    items = state.chats.get(ev.chat)
    if items is not None:
        _drop_call(items, ev.call_id)
        if not items:
            del state.chats[ev.chat]


def _completed(state: State, rec: Recorded, ev: LlmCompleted) -> None:
    items = state.chats.get(ev.chat)
    if items is None or ev.tool_calls:
        return  # a round of the tool loop: the next round's request follows
    answered = False
    for item in items.values():
        if item.call_id == ev.call_id:
            item.status = "answered"
            answered = True
    if answered:
        state.completions[ev.call_id] = Completion(
            content=ev.content, citations=ev.citations, seq=rec.seq, ts=rec.ts, chat=ev.chat
        )


def _planned(state: State, rec: Recorded, ev: ReplyPlanned) -> None:
    if ev.purpose not in _ANSWERS:
        return
    call_id = ev.call_id
    if call_id is not None:
        state.completions.pop(call_id, None)
    items = state.chats.get(ev.chat)
    if items is None:
        return
    for msg_id in ev.trigger_ids:
        items.pop(msg_id, None)
    if ev.in_reply_to is not None:
        items.pop(ev.in_reply_to, None)
    if call_id is not None and items:
        _drop_call(items, call_id)
    if not items:
        del state.chats[ev.chat]


def _withheld(state: State, rec: Recorded, ev: ReplyWithheld) -> None:
    """The model stayed silent: the call's messages are decided, with no reply."""
    state.completions.pop(ev.call_id, None)
    items = state.chats.get(ev.chat)
    if items is None:
        return
    for msg_id in ev.trigger_ids:
        items.pop(msg_id, None)
    _drop_call(items, ev.call_id)
    if not items:
        del state.chats[ev.chat]


def _drop_call(items: dict[str, Item], call_id: str) -> None:
    for msg_id in [i.message.msg_id for i in items.values() if i.call_id == call_id]:
        del items[msg_id]


def _compacted(state: State, rec: Recorded, ev: Compacted) -> None:
    gone = removal(ev)
    if gone is None:
        return
    cut = ev.older_than if ev.older_than is not None else -math.inf
    orphaned: set[str] = set()
    for chat, items in list(state.chats.items()):
        for item in [i for i in items.values() if i.ts < cut or gone.gone(i.seq, i.ts, chat)]:
            del items[item.message.msg_id]
            if item.call_id is not None:
                orphaned.add(item.call_id)
        if not items:
            del state.chats[chat]
    # The chat waiting longest first, as a fold of what is left would order them.
    state.chats = dict(sorted(state.chats.items(), key=lambda kv: next(iter(kv[1].values())).seq))
    waiting = {i.call_id for items in state.chats.values() for i in items.values()}
    for call_id, done in list(state.completions.items()):
        dropped = call_id in orphaned and call_id not in waiting
        if dropped or gone.gone(done.seq, done.ts, done.chat):
            del state.completions[call_id]


def chats_with_work(state: State) -> list[str]:
    """Chats with undecided messages, the one waiting longest first."""
    return list(state.chats)


def pending(state: State, chat: str) -> list[Item]:
    """Every undecided message of ``chat`` (any status) in log order."""
    items = state.chats.get(chat)
    return list(items.values()) if items else []


def item(state: State, chat: str, msg_id: str) -> Item | None:
    """The undecided message ``msg_id`` of ``chat``, if it is one."""
    return state.chats.get(chat, {}).get(msg_id)


def completion(state: State, call_id: str) -> Completion | None:
    return state.completions.get(call_id)


_HANDLERS: Handlers[State] = {
    MessageReceived: _received,
    MessageEdited: _edited,
    MessageRevoked: _revoked,
    MediaFetched: _fetched,
    MediaTranscribed: _transcribed,
    DocumentRead: _read,
    MessageSkipped: _skipped,
    LlmRequested: _requested,
    LlmFailed: _failed,
    LlmCompleted: _completed,
    ReplyPlanned: _planned,
    ReplyWithheld: _withheld,
    Compacted: _compacted,
}
PROJECTION = Projection.of("queue", State, _HANDLERS)
apply = PROJECTION.apply
