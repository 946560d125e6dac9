"""Where a chat's words are filed under other chats: what ``forget`` takes with the chat.

The owner's chat gets a debug note quoting each message of a chat with
``debug: true``, and alerts quoting an API's error about a chat (an API or a
proxy may echo the user's text in it); an alert also stands chat-less as
``OwnerAlerted``. Each names the chat it quotes (``quotes_chat``); older
records do not, and are known by what they quote:

- a debug note was recorded in the same append as the chat's ``LlmRequested``,
  right before it, and its first line names the chat (``[debug] NAME``);
- an alert's detail ends with the error of the chat's final failure (an
  error word for word the same in another chat takes that chat's alert too:
  when in doubt, the words go).

What went with a copy goes too: its sends and failures, and the message
WhatsApp handed back as the bot's own (by id, or by text when from you),
with what was decided about that message.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import NamedTuple

from events.model import (
    MEDIA_OUTCOMES,
    LlmFailed,
    LlmRequested,
    MessageEdited,
    MessageReceived,
    MessageRevoked,
    MessageSkipped,
    OwnerAlerted,
    Recorded,
    ReplyFailed,
    ReplyPlanned,
    ReplySent,
    TranscriptionFailed,
)

_FAILING = frozenset({"llm_failing", "transcription_failing"})
_ABOUT_A_MESSAGE = (MessageSkipped, MessageEdited, MessageRevoked, *MEDIA_OUTCOMES)


class Sources(NamedTuple):
    """What an older copy of a chat's words is known by, read from the chat's own events."""

    requested: frozenset[int]  # seqs of its LlmRequested
    errors: frozenset[str]  # errors of its final LLM and transcription failures


def sources(theirs: Iterable[Recorded]) -> Sources:
    requested, errors = set(), set()
    for rec in theirs:
        ev = rec.event
        if isinstance(ev, LlmRequested):
            requested.add(rec.seq)
        elif isinstance(ev, (LlmFailed, TranscriptionFailed)) and ev.final and ev.error:
            errors.add(ev.error)
    return Sources(frozenset(requested), frozenset(errors))


def copies(
    elsewhere: Iterable[Recorded], ids: Collection[str], names: Collection[str], found: Sources
) -> frozenset[int]:
    """The seqs among ``elsewhere`` (other chats' and chat-less events, in log order) that
    carry the words of the chat known by ``ids`` (and entity ``names``)."""
    quoted = _Quoted(frozenset(ids), frozenset(names), found)
    seqs: set[int] = set()
    replies: set[str] = set()  # reply ids of the copies
    echoes: dict[str, set[str]] = {}  # chat -> wa ids and texts of the copies
    messages: set[tuple[str, str]] = set()  # (chat, msg_id) of the copies handed back
    for rec in elsewhere:
        ev = rec.event
        if isinstance(ev, ReplyPlanned):
            carries = quoted.planned(rec, ev)
            if carries:
                replies.add(ev.reply_id)
                echoes.setdefault(ev.chat, set()).update(filter(None, (ev.wa_id, ev.text)))
        elif isinstance(ev, OwnerAlerted):
            carries = quoted.alerted(ev)
        elif isinstance(ev, (ReplySent, ReplyFailed)):
            carries = ev.reply_id in replies
        elif isinstance(ev, MessageReceived):
            carries = _handed_back(ev, echoes.get(ev.chat, set()))
            if carries:
                messages.add((ev.chat, ev.msg_id))
        else:
            carries = isinstance(ev, _ABOUT_A_MESSAGE) and (ev.chat, ev.msg_id) in messages
        if carries:
            seqs.add(rec.seq)
    return frozenset(seqs)


def _handed_back(ev: MessageReceived, sent: Collection[str]) -> bool:
    return ev.msg_id in sent or (ev.from_me and bool(ev.text) and ev.text in sent)


class _Quoted(NamedTuple):
    ids: frozenset[str]
    names: frozenset[str]
    found: Sources

    def planned(self, rec: Recorded, ev: ReplyPlanned) -> bool:
        if ev.quotes_chat is not None:
            return ev.quotes_chat in self.ids
        if ev.purpose == "debug":
            head = ev.text.partition("\n")[0].removeprefix("[debug] ")
            return rec.seq + 1 in self.found.requested or head in self.names | self.ids
        return ev.purpose == "alert" and self._quotes_an_error(ev.text)

    def alerted(self, ev: OwnerAlerted) -> bool:
        if ev.quotes_chat is not None:
            return ev.quotes_chat in self.ids
        return ev.kind in _FAILING and self._quotes_an_error(ev.detail)

    def _quotes_an_error(self, text: str) -> bool:
        return any(text.endswith(error) for error in self.found.errors)
