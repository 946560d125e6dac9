"""What the console shows that no daemon projection keeps: totals per chat and per UTC day.

A fold over the whole log, kept current beside the daemon's projections by
``Console``. It also keeps every message and reply text for search, and the
newest events that belong to no chat.

A compaction is absorbed as the daemon's projections absorb it, without
reading the log again: the texts and events it removed are dropped (search
never finds what was rotated or forgotten), and so are the totals of a
forgotten chat. The other totals are tallies of what was recorded, as in
``projections.stats``: a rotation does not lower them. Only a marker from an
older version, which does not say what went, makes the console count again.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from events.model import (
    Compacted,
    ConfigLoaded,
    Event,
    LlmCompleted,
    LlmFailed,
    LlmRequested,
    MediaTranscribed,
    MessageEdited,
    MessageReceived,
    MessageSkipped,
    MessageUndecryptable,
    Recorded,
    ReplyFailed,
    ReplyPlanned,
    ReplySent,
)
from events.protocol import removal
from projections import spend
from projections.spend import KINDS

# Upper bounds (seconds) of the LLM latency histogram in /metrics.
LATENCY_BUCKETS = (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
SYSTEM_EVENTS = 30  # chat-less events kept for the dashboard
_REASON_CHARS = 48


@dataclass
class ChatTotals:
    events: int = 0
    last_ts: float = 0.0
    messages_in: int = 0
    turns: int = 0  # decisions, counted as the audit timeline counts them
    llm_calls: int = 0
    replies: int = 0  # sent replies (purpose "reply")
    spend_usd: float = 0.0  # every kind (projections.spend)
    failures: int = 0  # final LLM and sending failures
    last_seq: int = 0  # of the chat's previous event: a skipped burst is one turn
    skip_reason: str | None = None  # the last turn's reason, when it was a skip


@dataclass
class Day:
    messages_in: int = 0
    replies_out: int = 0
    spend_usd: float = 0.0  # every kind
    latencies_ms: list[float] = field(default_factory=list)
    failures: int = 0


class Text(NamedTuple):
    """A searchable text: an inbound message (``in``), the words it was edited to
    (``edited``), a voice note's transcript (``transcript``), or a planned message (``out``).
    ``anchor``: the seq the timeline shows it at, the message's for an edit or a transcript
    (the page has an anchor on the message, none on each event about it)."""

    seq: int
    ts: float
    chat: str
    role: str
    text: str
    anchor: int


@dataclass
class Summary:
    chats: dict[str, ChatTotals] = field(default_factory=dict)
    days: dict[str, Day] = field(default_factory=dict)  # "YYYY-MM-DD" (UTC) -> totals
    decisions: dict[str, int] = field(default_factory=dict)  # llm, reply, or the skip reason
    llm_outcomes: dict[str, int] = field(default_factory=dict)  # completed, retried, failed
    failures: dict[str, int] = field(default_factory=dict)  # final failures by reason
    latency_buckets: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS))
    latency_sum_s: float = 0.0
    latency_count: int = 0
    tokens: dict[str, int] = field(default_factory=lambda: {"input": 0, "output": 0})
    spend_usd: dict[str, float] = field(default_factory=lambda: dict.fromkeys(KINDS, 0.0))
    sent: dict[str, int] = field(default_factory=dict)  # sent messages by purpose
    texts: list[Text] = field(default_factory=list)
    received: dict[str, tuple[int, float]] = field(default_factory=dict)  # "chat/msg_id" -> seq, ts
    system: deque[Recorded] = field(default_factory=lambda: deque(maxlen=SYSTEM_EVENTS))
    calls: set[str] = field(default_factory=set)  # call ids requested (their turns exist)
    planned: dict[str, str] = field(default_factory=dict)  # reply_id -> purpose, until sent
    undecided: set[str] = field(default_factory=set)  # "chat/msg_id" of messages in the queue
    stale: bool = False  # a compaction said not what it removed: count again from the log

    def feed(self, records: Iterable[Recorded]) -> None:
        for rec in records:
            event = rec.event
            if isinstance(event, Compacted):
                self.absorb(event)
                continue
            if not event.chat:
                if not isinstance(event, ConfigLoaded):
                    self.system.append(rec)
                continue
            chat = self.chats.get(event.chat)
            if chat is None:
                chat = self.chats[event.chat] = ChatTotals()
            handler = _HANDLERS.get(type(event))
            if handler is not None:
                handler(self, chat, rec, event)
            chat.events += 1
            chat.last_ts = max(chat.last_ts, rec.ts)
            chat.last_seq = rec.seq

    def absorb(self, marker: Compacted) -> None:
        """Drop what ``marker`` removed (see the module docstring)."""
        gone = removal(marker)
        if gone is None:
            self.stale = self.stale or bool(marker.removed)
            return
        self.texts = [t for t in self.texts if not gone.gone(t.seq, t.ts, t.chat)]
        self.received = {
            key: (seq, ts)
            for key, (seq, ts) in self.received.items()
            if not gone.gone(seq, ts, key.split("/", 1)[0])
        }
        kept = [r for r in self.system if not gone.gone(r.seq, r.ts, r.event.chat)]
        self.system = deque(kept, maxlen=SYSTEM_EVENTS)
        if marker.chats is not None and marker.older_than is None and marker.seqs is None:
            forgotten = set(marker.chats)  # every event of these chats up to the marker went
            for chat in forgotten:
                self.chats.pop(chat, None)
            self.undecided = {k for k in self.undecided if k.split("/", 1)[0] not in forgotten}

    def anchor(self, rec: Recorded, ev: MessageEdited | MediaTranscribed) -> int:
        """The seq of the message ``ev`` is about (its own, when the message is not in the log)."""
        found = self.received.get(f"{ev.chat}/{ev.msg_id}")
        return rec.seq if found is None else found[0]

    def day(self, ts: float) -> Day:
        key = time.strftime("%Y-%m-%d", time.gmtime(ts))
        found = self.days.get(key)
        if found is None:
            found = self.days[key] = Day()
        return found

    def decide(self, chat: str, msg_ids: Iterable[str], decision: str) -> None:
        for msg_id in msg_ids:
            key = f"{chat}/{msg_id}"
            if key in self.undecided:
                self.undecided.discard(key)
                self.decisions[decision] = self.decisions.get(decision, 0) + 1

    def bump(self, table: dict[str, int], key: str) -> None:
        table[key] = table.get(key, 0) + 1


def _received(s: Summary, chat: ChatTotals, rec: Recorded, ev: MessageReceived) -> None:
    chat.messages_in += 1
    s.day(rec.ts).messages_in += 1
    s.undecided.add(f"{ev.chat}/{ev.msg_id}")
    s.received[f"{ev.chat}/{ev.msg_id}"] = (rec.seq, rec.ts)
    s.texts.append(Text(rec.seq, rec.ts, ev.chat, "in", ev.text, rec.seq))


def _undecryptable(s: Summary, chat: ChatTotals, rec: Recorded, ev: MessageUndecryptable) -> None:
    """A message with nothing to read: in, and decided at once (never answered)."""
    chat.messages_in += 1
    s.day(rec.ts).messages_in += 1
    chat.turns += 1  # its own turn, as in projections.timeline
    chat.skip_reason = None
    s.bump(s.decisions, "undecryptable")


def _edited(s: Summary, chat: ChatTotals, rec: Recorded, ev: MessageEdited) -> None:
    if ev.text is not None:  # None: an edit whose words could not be read
        s.texts.append(Text(rec.seq, rec.ts, ev.chat, "edited", ev.text, s.anchor(rec, ev)))


def _transcribed(s: Summary, chat: ChatTotals, rec: Recorded, ev: MediaTranscribed) -> None:
    _spent(s, chat, rec, ev)
    s.texts.append(Text(rec.seq, rec.ts, ev.chat, "transcript", ev.text, s.anchor(rec, ev)))


def _skipped(s: Summary, chat: ChatTotals, rec: Recorded, ev: MessageSkipped) -> None:
    # One decision skipping a whole burst is one turn (projections.timeline).
    if not (chat.skip_reason == ev.reason and chat.last_seq == rec.seq - 1):
        chat.turns += 1
    chat.skip_reason = ev.reason
    s.decide(ev.chat, [ev.msg_id], ev.reason)


def _requested(s: Summary, chat: ChatTotals, rec: Recorded, ev: LlmRequested) -> None:
    chat.turns += 1
    chat.skip_reason = None
    chat.llm_calls += 1
    s.calls.add(ev.call_id)
    s.decide(ev.chat, ev.trigger_ids, "llm")


def _spent(s: Summary, chat: ChatTotals, rec: Recorded, ev: Event) -> None:
    found = spend.cost(ev)
    if found is None:
        return
    kind, usd = found
    chat.spend_usd += usd
    s.day(rec.ts).spend_usd += usd
    s.spend_usd[kind] = s.spend_usd.get(kind, 0.0) + usd


def _completed(s: Summary, chat: ChatTotals, rec: Recorded, ev: LlmCompleted) -> None:
    _spent(s, chat, rec, ev)
    day = s.day(rec.ts)
    day.latencies_ms.append(ev.latency_ms)
    s.bump(s.llm_outcomes, "completed")
    seconds = ev.latency_ms / 1000
    for i, bound in enumerate(LATENCY_BUCKETS):
        if seconds <= bound:
            s.latency_buckets[i] += 1
            break
    s.latency_sum_s += seconds
    s.latency_count += 1
    s.tokens["input"] += ev.usage.input_tokens
    s.tokens["output"] += ev.usage.output_tokens


def _llm_failed(s: Summary, chat: ChatTotals, rec: Recorded, ev: LlmFailed) -> None:
    _spent(s, chat, rec, ev)  # an answer billed but unusable
    if not ev.final:
        s.bump(s.llm_outcomes, "retried")
        return
    s.bump(s.llm_outcomes, "failed")
    _failure(s, chat, rec, f"LLM {failure_reason(ev.status, ev.error)}")


def _planned(s: Summary, chat: ChatTotals, rec: Recorded, ev: ReplyPlanned) -> None:
    s.planned[ev.reply_id] = ev.purpose
    s.texts.append(Text(rec.seq, rec.ts, ev.chat, "out", ev.text, rec.seq))
    if ev.call_id is not None and ev.call_id in s.calls:
        return
    # A message planned without an LLM call (a reset notice, the startup message) is a turn.
    chat.turns += 1
    chat.skip_reason = None
    decision = "command" if ev.purpose == "command" else "reply"  # an owner command's answer
    s.decide(ev.chat, [*ev.trigger_ids, *([ev.in_reply_to] if ev.in_reply_to else [])], decision)


def _sent(s: Summary, chat: ChatTotals, rec: Recorded, ev: ReplySent) -> None:
    purpose = s.planned.pop(ev.reply_id, "reply")
    s.bump(s.sent, purpose)
    if purpose == "reply":
        chat.replies += 1
        s.day(rec.ts).replies_out += 1


def _send_failed(s: Summary, chat: ChatTotals, rec: Recorded, ev: ReplyFailed) -> None:
    if ev.final:
        s.planned.pop(ev.reply_id, None)
        _failure(s, chat, rec, f"sending: {failure_reason(None, ev.error)}")


def _failure(s: Summary, chat: ChatTotals, rec: Recorded, reason: str) -> None:
    chat.failures += 1
    s.day(rec.ts).failures += 1
    s.bump(s.failures, reason)


def failure_reason(status: int | None, error: str) -> str:
    """A short grouping key for a failure: its HTTP status, else the error's first clause."""
    if status:
        return f"HTTP {status}"
    head = error.split(":", 1)[0].split(" (", 1)[0].strip() or "unknown error"
    return head if len(head) <= _REASON_CHARS else head[: _REASON_CHARS - 1] + "…"


_HANDLERS: dict[type, Callable[[Summary, ChatTotals, Recorded, Any], None]] = {
    MessageReceived: _received,
    MessageUndecryptable: _undecryptable,
    MessageEdited: _edited,
    MediaTranscribed: _transcribed,
    MessageSkipped: _skipped,
    LlmRequested: _requested,
    LlmCompleted: _completed,
    LlmFailed: _llm_failed,
    ReplyPlanned: _planned,
    ReplySent: _sent,
    ReplyFailed: _send_failed,
    **{t: _spent for t in spend.SPENDING if t not in (LlmCompleted, LlmFailed, MediaTranscribed)},
}
