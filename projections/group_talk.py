"""What was said in each group lately, and when the bot last spoke there.

In a ``mention`` or ``keyword`` group the bot answers one message, but the
conversation it lands in is the messages before it; they are in the log
already (recorded, then skipped as ``not_triggered``). This keeps each
group's newest ``KEEP`` messages (who, under what name, the words as they
stand after their authors' edits: whole for the newest ``WHOLE``, which a bare
call may ask, cut for the others) and the seqs of the bot's replies there, so
a turn can be given the messages since the bot last answered
(``groups.context_messages``).
A message with an attachment is kept, caption or not, with what is learnt of
it later (fetched, transcribed): a photo or voice note is said too, and may be
the very question a bare call asks. A revoked message leaves; the owner's own
messages count (they are part of the conversation), but not the bot's own
replies WhatsApp echoes back (``MessageSkipped`` reason ``echo``): the bot
said them, they are not talk.

A ``Compacted`` drops the messages and replies that went. As with the queue,
what a removed later event did stays done (an edit's words, an echo's
leaving), and a group that
lost messages keeps the newest of what is left: a fold of what is left may
reach further back.
"""

from __future__ import annotations

import msgspec

from events.jid import user_part
from events.model import (
    Compacted,
    DocumentRead,
    Media,
    MediaFetched,
    MediaTranscribed,
    MessageEdited,
    MessageReceived,
    MessageRevoked,
    MessageSkipped,
    Recorded,
    ReplyPlanned,
)
from projections.base import Handlers, Projection, removal

KEEP = 100  # per group: the most ``groups.context_messages`` may ask for
# The newest messages of a group keep their words whole: a bare call asks its
# sender's last words, which are among them. Older ones are context only, and
# context shows at most WORDS characters of a message (``brief``), so they are
# kept cut: a group never holds KEEP whole texts.
WHOLE = 10
WORDS = 1000


class Heard(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    seq: int
    ts: float
    msg_id: str
    name: str  # the sender's push name, else the number or LID
    text: str
    # Who wrote it, so only their own edit changes ``text`` (``MessageEdited.by_author``).
    sender: str = ""
    sender_alt: str | None = None
    from_me: bool = False
    media: Media | None = None  # as it stands: fetched later, else as the message carried it
    transcript: str | None = None  # of a voice note or audio message, once one was made

    @property
    def document(self) -> DocumentRead | None:
        """Never read for a message heard in passing (``Attached``)."""
        return None


class Group(msgspec.Struct, kw_only=True, gc=False):
    heard: list[Heard] = []  # oldest first, at most KEEP
    spoke: list[tuple[int, float]] = []  # (seq, ts) of the bot's replies since the oldest heard


class State(msgspec.Struct, kw_only=True):
    groups: dict[str, Group] = {}


def _received(state: State, rec: Recorded, ev: MessageReceived) -> None:
    if not ev.is_group or not (ev.text.strip() or ev.media is not None):
        return
    group = state.groups.get(ev.chat)
    if group is None:
        group = state.groups[ev.chat] = Group()
    name = ev.push_name or user_part(ev.sender)
    heard = Heard(
        seq=rec.seq,
        ts=rec.ts,
        msg_id=ev.msg_id,
        name=name,
        text=ev.text,
        sender=ev.sender,
        sender_alt=ev.sender_alt,
        from_me=ev.from_me,
        media=ev.media,
    )
    group.heard.append(heard)
    if len(group.heard) > WHOLE:
        group.heard[-WHOLE - 1] = _briefed(group.heard[-WHOLE - 1])
    if len(group.heard) > KEEP:
        del group.heard[0]
        oldest = group.heard[0].seq
        spoke = group.spoke
        # In log order, so only a prefix can go; most messages drop none (no list built).
        if spoke and spoke[0][0] <= oldest:
            group.spoke = [s for s in spoke if s[0] > oldest]


def _edited(state: State, rec: Recorded, ev: MessageEdited) -> None:
    """The author's new words replace the message; an edit by anyone else changes nothing."""
    group = state.groups.get(ev.chat)
    if group is None or ev.text is None:
        return
    for n, heard in enumerate(group.heard):
        if heard.msg_id == ev.msg_id and ev.by_author(
            heard.sender, heard.sender_alt, heard.from_me
        ):
            _replace(group, n, text=ev.text)


def _fetched(state: State, rec: Recorded, ev: MediaFetched) -> None:
    _learnt(state, ev.chat, ev.msg_id, media=ev.media)


def _transcribed(state: State, rec: Recorded, ev: MediaTranscribed) -> None:
    _learnt(state, ev.chat, ev.msg_id, transcript=ev.text)


def _learnt(state: State, chat: str, msg_id: str, **fields: object) -> None:
    """What was learnt later of a message's attachment."""
    group = state.groups.get(chat)
    if group is None:
        return
    for n, heard in enumerate(group.heard):
        if heard.msg_id == msg_id:
            _replace(group, n, **fields)


def _replace(group: Group, n: int, **fields: object) -> None:
    """Message ``n`` with ``fields`` changed, as a new value (a call's inputs keep
    what it saw); cut, as older messages are kept, unless among the newest."""
    changed = msgspec.structs.replace(group.heard[n], **fields)
    group.heard[n] = changed if n >= len(group.heard) - WHOLE else _briefed(changed)


def _revoked(state: State, rec: Recorded, ev: MessageRevoked | MessageSkipped) -> None:
    group = state.groups.get(ev.chat)
    if group is not None:
        group.heard = [h for h in group.heard if h.msg_id != ev.msg_id]


def _skipped(state: State, rec: Recorded, ev: MessageSkipped) -> None:
    """The bot's own reply, echoed back: not something said to it."""
    if ev.reason == "echo":
        _revoked(state, rec, ev)


def _planned(state: State, rec: Recorded, ev: ReplyPlanned) -> None:
    group = state.groups.get(ev.chat)
    if group is not None and ev.purpose == "reply":
        group.spoke.append((rec.seq, rec.ts))


def _compacted(state: State, rec: Recorded, ev: Compacted) -> None:
    gone = removal(ev)
    if gone is None:
        return
    for chat, group in list(state.groups.items()):
        group.heard = [h for h in group.heard if not gone.gone(h.seq, h.ts, chat)]
        group.spoke = [s for s in group.spoke if not gone.gone(s[0], s[1], chat)]
        if not group.heard:
            del state.groups[chat]


def _briefed(heard: Heard) -> Heard:
    """``heard`` as an older message is kept: its words and transcript cut."""
    transcript = heard.transcript
    return msgspec.structs.replace(
        heard,
        text=brief(heard.text),
        transcript=brief(transcript) if transcript is not None else None,
    )


def brief(text: str) -> str:
    """A message's words as context shows them: at most WORDS characters."""
    return text if len(text) <= WORDS else text[:WORDS] + "…"


def since_spoke(state: State, chat: str, leave: frozenset[str]) -> list[Heard]:
    """The messages of ``chat`` after the bot's last reply there, oldest first,
    without those in ``leave`` (the messages being answered)."""
    group = state.groups.get(chat)
    if group is None:
        return []
    last = group.spoke[-1][0] if group.spoke else 0
    return [h for h in group.heard if h.seq > last and h.msg_id not in leave]


def heard(state: State, chat: str, msg_id: str) -> Heard | None:
    """Message ``msg_id`` of group ``chat``, while it is among the newest ``KEEP``."""
    group = state.groups.get(chat)
    for h in group.heard if group is not None else ():
        if h.msg_id == msg_id:
            return h
    return None


HANDLERS: Handlers[State] = {
    MessageReceived: _received,
    MessageEdited: _edited,
    MessageRevoked: _revoked,
    MessageSkipped: _skipped,
    MediaFetched: _fetched,
    MediaTranscribed: _transcribed,
    ReplyPlanned: _planned,
    Compacted: _compacted,
}
PROJECTION = Projection.of("group_talk", State, HANDLERS)
