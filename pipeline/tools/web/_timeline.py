"""A chat's timeline and one turn in full: the audit fold, plus every event it leaves out.

Turns come from ``projections.timeline`` (the fold ``audit`` prints). Config
changes sit between them with their diff; edits and revokes under their
message. Any other event of the chat (a type this page does not know, such as a
transcript) is shown generically, under the message, reply or call it names,
or on a line of its own.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from events.model import (
    ConfigLoaded,
    LlmCompleted,
    LlmFailed,
    LlmRequested,
    MessageEdited,
    MessageReceived,
    MessageRevoked,
    MessageSkipped,
    MessageUndecryptable,
    Recorded,
    ReplyDelivered,
    ReplyFailed,
    ReplyPlanned,
    ReplySent,
    SessionStarted,
)
from pipeline.tools.audit import event_object, headline, who
from projections.timeline import Incoming, Turn, audit, changes

# What the turns already show; every other event type is rendered generically.
TURN_EVENTS = (
    MessageReceived,
    MessageEdited,
    MessageRevoked,
    MessageSkipped,
    MessageUndecryptable,
    SessionStarted,
    LlmRequested,
    LlmCompleted,
    LlmFailed,
    ReplyPlanned,
    ReplySent,
    ReplyFailed,
    ReplyDelivered,
)
# Fields of MessageReceived that a message line already shows.
_MESSAGE_SHOWN = frozenset(
    {"type", "seq", "ts", "chat", "msg_id", "sender", "push_name", "text", "kind", "from_me"}
    | {"is_group", "sent_at"}
)
_ENVELOPE = frozenset({"type", "seq", "ts", "chat"})
# Fields by which an event names what it is about, most specific first.
_REFERENCES = ("msg_id", "reply_id", "call_id")


@dataclass
class EventView:
    type: str
    seq: int
    ts: float
    fields: dict[str, str]
    refers_to: str | None = None  # the msg_id it names, when it names one


@dataclass
class MessageView:
    m: Incoming
    who: str
    extras: dict[str, str]  # fields beyond the text (quoted, media, mentions, ...)
    events: list[EventView] = field(default_factory=list)  # edits, revokes, transcripts


@dataclass
class TurnView:
    turn: Turn
    headline: str
    messages: list[MessageView]
    events: list[EventView] = field(default_factory=list)  # other events about this turn
    related: list[Recorded] = field(default_factory=list)  # every event of the turn

    @property
    def cost_usd(self) -> float | None:
        r = self.turn.response
        return None if r is None else r.usage.cost_usd


@dataclass
class ConfigView:
    seq: int
    ts: float
    hash: str
    changes: list[str] | None  # None: the first config in the log
    unchanged: bool  # loaded again as it was (the bot restarted)


@dataclass
class Entry:
    seq: int
    turn: TurnView | None = None
    config: ConfigView | None = None
    event: EventView | None = None


@dataclass
class Timeline:
    chat: str
    turns: list[TurnView]
    entries: list[Entry]
    hidden: int = 0  # older turns left out of ``entries``


def event_view(rec: Recorded) -> EventView:
    obj = event_object(rec)
    fields = {k: _text(v) for k, v in obj.items() if k not in _ENVELOPE and _present(v)}
    refers = obj.get("msg_id")
    return EventView(
        obj["type"], rec.seq, rec.ts, fields, refers if isinstance(refers, str) else None
    )


def raw_json(rec: Recorded) -> str:
    """The event as ``audit --json`` shows it, indented."""
    return json.dumps(event_object(rec), indent=2, ensure_ascii=False)


def build(records: Sequence[Recorded], chat: str, *, limit: int | None = None) -> Timeline:
    """The timeline of ``chat`` from its events and the chat-less ones (``Console.records``)."""
    turns = audit(records, chat).turns
    owner = assign(records, turns)
    by_seq = {r.seq: r for r in records}
    views = [_turn_view(t, by_seq) for t in turns]
    for rec in records:
        index = owner.get(rec.seq)
        if index is not None:
            views[index].related.append(rec)
    entries = [Entry(v.turn.seq, turn=v) for v in views]
    entries += [Entry(c.seq, config=c) for c in _configs(records, chat)]
    for rec in records:
        if rec.event.chat != chat or isinstance(rec.event, (*TURN_EVENTS, ConfigLoaded)):
            continue
        view = event_view(rec)
        index = owner.get(rec.seq)
        if index is None:
            entries.append(Entry(rec.seq, event=view))
        else:
            _attach(views[index], view)
    entries.sort(key=lambda e: e.seq)
    hidden = 0
    if limit is not None and len(views) > limit:
        hidden = len(views) - limit
        first = views[hidden].turn.seq
        entries = [e for e in entries if e.seq >= first]
    return Timeline(chat, views, entries, hidden)


def find_turn(timeline: Timeline, seq: int) -> int | None:
    """The index of the turn that holds the event at ``seq`` (a message, a decision, a reply)."""
    for i, view in enumerate(timeline.turns):
        if view.turn.seq == seq or any(r.seq == seq for r in view.related):
            return i
    return None


def assign(records: Sequence[Recorded], turns: Sequence[Turn]) -> dict[int, int]:
    """seq -> index of the turn each event belongs to, by the ids it carries."""
    tables: dict[str, dict[str, int]] = {name: {} for name in _REFERENCES}
    sessions: dict[str, int] = {}
    for i, t in enumerate(turns):
        tables["msg_id"].update((m.msg_id, i) for m in t.messages)
        tables["reply_id"].update((d.reply_id, i) for d in t.replies)
        if t.request is not None:
            tables["call_id"][t.request.call_id] = i
        if t.session_id is not None and t.session_started is not None:
            sessions[t.session_id] = i
    owner: dict[int, int] = {}
    for rec in records:
        ev = rec.event
        for name in _REFERENCES:
            value = getattr(ev, name, None)
            if isinstance(value, str) and value in tables[name]:
                owner[rec.seq] = tables[name][value]
                break
        else:
            if isinstance(ev, SessionStarted) and ev.session_id in sessions:
                owner[rec.seq] = sessions[ev.session_id]
    return owner


def _turn_view(t: Turn, by_seq: dict[int, Recorded]) -> TurnView:
    messages = [MessageView(m, who(m), _extras(by_seq.get(m.seq))) for m in t.messages]
    return TurnView(t, headline(t), messages)


def _attach(view: TurnView, event: EventView) -> None:
    for message in view.messages:
        if message.m.msg_id == event.refers_to:
            message.events.append(event)
            return
    view.events.append(event)


def _extras(rec: Recorded | None) -> dict[str, str]:
    """What a message carries beyond its text, e.g. a quote or media, when present."""
    if rec is None:
        return {}
    obj = event_object(rec)
    return {k: _text(v) for k, v in obj.items() if k not in _MESSAGE_SHOWN and _present(v)}


def _configs(records: Sequence[Recorded], chat: str) -> list[ConfigView]:
    """Every config loaded, with what changed; restarts only once the chat has begun."""
    first_of_chat = next((r.seq for r in records if r.event.chat == chat), None)
    shown: list[ConfigView] = []
    previous: ConfigLoaded | None = None
    for rec in records:
        ev = rec.event
        if not isinstance(ev, ConfigLoaded):
            continue
        unchanged = previous is not None and previous.hash == ev.hash
        diff = None if previous is None else changes(previous.config, ev.config)
        began = first_of_chat is not None and rec.seq > first_of_chat
        if not unchanged or began:
            shown.append(ConfigView(rec.seq, rec.ts, ev.hash, diff, unchanged))
        previous = ev
    return shown


def _present(value: Any) -> bool:
    """Worth a line: empty values say nothing, but ``false`` does (an alert's ``ok``)."""
    return value is False or value not in (None, "", [], {})


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode()
