"""A chat's timeline and one turn in full: the audit fold, plus every event it leaves out.

Turns come from ``projections.timeline`` (the fold ``audit`` prints). Config
changes sit between them with their diff; edits and revokes under their
message, with its attachment and what was made of it (a transcript, a
document's text). Any other event of the chat (a type this page does not know)
is shown generically, under the message, reply or call it names, or on a line
of its own.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from events.model import (
    ChatPaused,
    ConfigLoaded,
    DocumentRead,
    FactForgotten,
    FactRemembered,
    LlmCompleted,
    LlmFailed,
    LlmRequested,
    MediaFetched,
    MediaTranscribed,
    MessageEdited,
    MessageReceived,
    MessageRevoked,
    MessageSkipped,
    MessageUndecryptable,
    Recorded,
    ReminderCancelled,
    ReminderFired,
    ReminderSet,
    ReplyDelivered,
    ReplyFailed,
    ReplyPlanned,
    ReplySent,
    ReplyWithheld,
    SessionStarted,
    ToolCalled,
    ToolFinished,
    TranscriptionFailed,
)
from pipeline.config import (
    AppConfig,
    ConfigError,
    GroupEntity,
    Skip,
    config_from_dict,
    skip_words,
    trigger_words,
)
from pipeline.tools.audit import attachment_facts, event_object, headline, outcome, unused, who
from projections.config_diff import changes
from projections.timeline import Incoming, Turn, audit

# What the turns already show; every other event type is rendered generically.
TURN_EVENTS = (
    MessageReceived,
    MediaFetched,  # its media is the message's (the attachment line shows it)
    MediaTranscribed,
    TranscriptionFailed,
    DocumentRead,
    MessageEdited,
    MessageRevoked,
    MessageSkipped,
    MessageUndecryptable,
    SessionStarted,
    LlmRequested,
    LlmCompleted,
    LlmFailed,
    ToolCalled,  # a turn's tool calls, with their results, under the round that made them
    ToolFinished,
    ReplyWithheld,
    ReminderSet,  # a turn's tool effects, and a reminder's firing, on its turn
    ReminderCancelled,
    ReminderFired,
    FactRemembered,
    FactForgotten,
    ReplyPlanned,
    ReplySent,
    ReplyFailed,
    ReplyDelivered,
)
# Fields of MessageReceived that a message line already shows.
_MESSAGE_SHOWN = frozenset(
    {"type", "seq", "ts", "chat", "msg_id", "sender", "push_name", "text", "kind", "from_me"}
    | {"is_group", "sent_at", "media"}
)
# How a message's attachment is named: a voice note is not just "audio".
KIND_NAMES = {"voice": "voice note", "audio": "audio", "image": "image", "video": "video"} | {
    "document": "document",
    "sticker": "sticker",
}
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
    extras: dict[str, str]  # fields beyond the text and the attachment (quoted, mentions, ...)
    events: list[EventView] = field(default_factory=list)  # of types the console does not know
    attachment: str = ""  # "voice note · 7 s · audio/ogg · 20 KB"
    unused: str = ""  # why the attachment's bytes were not used
    outcomes: list[tuple[str, str]] = field(default_factory=list)  # transcripts, document text


@dataclass
class TurnView:
    turn: Turn
    headline: str
    messages: list[MessageView]
    why: str = ""  # why it was skipped, or what called the bot in a group, in words
    events: list[EventView] = field(default_factory=list)  # other events about this turn
    related: list[Recorded] = field(default_factory=list)  # every event of the turn

    @property
    def decision(self) -> str:
        """The headline, with the reason in words: ``skipped: no keyword matched ("bot")``."""
        if not self.why:
            return self.headline
        return (
            f"skipped: {self.why}"
            if self.turn.kind == "skipped"
            else f"{self.headline}: {self.why}"
        )

    @property
    def cost_usd(self) -> float | None:
        """What the turn's LLM calls cost: every round of its tool loop and its answer."""
        costs = [r.usage.cost_usd for r in [*self.turn.rounds, self.turn.response] if r is not None]
        known = [c for c in costs if c is not None]
        return sum(known) if known else None


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


def build(
    records: Sequence[Recorded], chat: str, *, limit: int | None = None, at: int | None = None
) -> Timeline:
    """The timeline of ``chat`` from its events and the chat-less ones (``Console.records``):
    the newest ``limit`` turns, and every turn since the one holding the event at seq ``at``
    (a search hit links there: it must be on the page)."""
    turns = audit(records, chat).turns
    owner = assign(records, turns)
    by_seq = {r.seq: r for r in records}
    views = [_turn_view(t, by_seq) for t in turns]
    _say_why(records, chat, views, by_seq)
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
        held = None if at is None else _turn_of(views, at)
        if held is not None:
            hidden = min(hidden, held)
        first = views[hidden].turn.seq
        entries = [e for e in entries if e.seq >= first]
    return Timeline(chat, views, entries, hidden)


def find_turn(timeline: Timeline, seq: int) -> int | None:
    """The index of the turn that holds the event at ``seq`` (a message, a decision, a reply)."""
    return _turn_of(timeline.turns, seq)


def _turn_of(views: Sequence[TurnView], seq: int) -> int | None:
    for i, view in enumerate(views):
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
        tables["call_id"].update((call_id, i) for call_id in t.calls)
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
    return TurnView(t, headline(t), [_message_view(m, by_seq.get(m.seq)) for m in t.messages])


def _message_view(m: Incoming, rec: Recorded | None) -> MessageView:
    view = MessageView(m, who(m), _extras(rec))
    media = m.media
    if media is not None:
        kind, mime, *rest = attachment_facts(media)
        seconds = [fact for fact in rest if fact.endswith(" s")]
        others = [fact for fact in rest if fact not in seconds]
        view.attachment = " · ".join([KIND_NAMES.get(kind, kind), *seconds, mime, *others])
        view.unused = unused(media) if media.problem is not None else ""
        view.outcomes = [outcome(done) for done in m.attached]
    return view


def _say_why(
    records: Sequence[Recorded], chat: str, views: Sequence[TurnView], by_seq: dict[int, Recorded]
) -> None:
    """Each skip's reason in words (the daemon logs the same: ``skip_words``), and what
    called the bot in a group, under the config in force when it was decided."""
    at = {v.turn.seq: v for v in views}
    parsed: dict[str, AppConfig | None] = {}
    config: AppConfig | None = None
    took_over: float | None = None
    owner_paused = False  # the newer of a takeover and a /pause was the /pause
    for rec in records:
        ev = rec.event
        if isinstance(ev, ConfigLoaded):
            if ev.hash not in parsed:
                parsed[ev.hash] = _parse(ev.config)
            config = parsed[ev.hash]
        view = at.get(rec.seq)
        if view is not None and config is not None and view.messages:
            view.why = _why(view, config, chat, (took_over, owner_paused), by_seq)
        if isinstance(ev, MessageSkipped) and ev.chat == chat and ev.reason == "takeover":
            took_over, owner_paused = rec.ts, False
        elif isinstance(ev, ChatPaused) and ev.chat == chat:
            owner_paused = True


def _why(
    view: TurnView,
    config: AppConfig,
    chat: str,
    paused: tuple[float | None, bool],
    by_seq: dict[int, Recorded],
) -> str:
    """``paused``: the chat's newest takeover, and whether a /pause came after it."""
    t, first = view.turn, view.messages[0].m
    entity = config.find_entity(chat)
    if t.kind == "skipped" and t.reason is not None:
        received = by_seq.get(first.seq)
        event = received.event if received is not None else None
        sent = event.sent_at if isinstance(event, MessageReceived) else 0.0
        facts = Skip(
            reason=t.reason,
            at=t.ts,
            sent_at=sent or first.ts,
            took_over_at=paused[0],
            media=first.media.kind if first.media is not None else None,
            owner_paused=paused[1],
        )
        return skip_words(facts, config, entity)
    if t.kind == "answered" and isinstance(entity, GroupEntity):
        return trigger_words(config, entity, first.text)
    return ""


def _parse(config: dict[str, Any]) -> AppConfig | None:
    try:
        return config_from_dict(config)
    except ConfigError:
        return None


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
