"""A chat's history as turns: what came in, what was decided and why, what went out.

Pure: built from the records alone. A turn is one decision about inbound
messages: an LLM call (with its request, answer and replies), a skip with its
reason, a reply without a call (``/reset``), or messages still undecided.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import msgspec

from events.model import (
    ChatTurn,
    Citation,
    ConfigLoaded,
    LlmCompleted,
    LlmFailed,
    LlmRequested,
    MessageReceived,
    MessageSkipped,
    Recorded,
    ReplyFailed,
    ReplyPlanned,
    ReplySent,
    SessionStarted,
    Usage,
)
from pipeline.audit.configdiff import changes

Kind = Literal["answered", "skipped", "reset", "reply", "startup", "vitality", "debug", "pending"]


class Inbound(msgspec.Struct, kw_only=True):
    seq: int
    ts: float
    msg_id: str
    sender: str
    push_name: str | None
    text: str
    kind: str
    from_me: bool


class Failure(msgspec.Struct, kw_only=True):
    seq: int
    ts: float
    error: str
    final: bool
    attempt: int
    status: int | None = None


class Response(msgspec.Struct, kw_only=True):
    seq: int
    ts: float
    content: str
    citations: list[Citation]
    usage: Usage
    latency_ms: float
    finish_reason: str


class Delivery(msgspec.Struct, kw_only=True):
    reply_id: str
    purpose: str
    text: str
    planned_seq: int
    planned_ts: float
    wa_id: str | None
    sent_ts: float | None = None  # when the log recorded the transport's confirmation
    failures: list[Failure] = []


class ConfigInfo(msgspec.Struct, kw_only=True):
    hash: str
    # Key paths changed since the config loaded before this one; None for the first.
    changed: list[str] | None


class Call(msgspec.Struct, kw_only=True):
    call_id: str
    model: str
    params: dict[str, Any]
    messages: list[ChatTurn]


class Turn(msgspec.Struct, kw_only=True):
    n: int
    kind: Kind
    seq: int
    ts: float
    messages: list[Inbound] = []
    reason: str | None = None  # why skipped
    detail: str = ""
    session_id: str | None = None
    session_started: str | None = None  # the SessionStarted reason, when this turn began it
    config: ConfigInfo | None = None
    request: Call | None = None
    failures: list[Failure] = []
    response: Response | None = None
    replies: list[Delivery] = []


class Audit(msgspec.Struct, kw_only=True):
    chat: str
    turns: list[Turn]
    records: list[Recorded]  # the chat's events and every ConfigLoaded, in log order


def audit(records: Iterable[Recorded], chat: str) -> Audit:
    builder = _Builder(chat)
    for rec in records:
        builder.add(rec)
    return builder.finish()


class _Builder:
    def __init__(self, chat: str) -> None:
        self.chat = chat
        self.records: list[Recorded] = []
        self.configs: list[tuple[str, dict[str, Any]]] = []  # (hash, config) in log order
        self.turns: list[Turn] = []
        self.inbound: dict[str, Inbound] = {}
        self.undecided: dict[str, Inbound] = {}
        self.started: dict[str, str] = {}  # session_id -> reason, until a turn claims it
        self.by_call: dict[str, Turn] = {}
        self.by_reply: dict[str, Delivery] = {}
        self.last: Recorded | None = None

    def add(self, rec: Recorded) -> None:
        ev = rec.event
        if isinstance(ev, ConfigLoaded):
            self.configs.append((ev.hash, ev.config))
            self.records.append(rec)
            return
        if ev.chat != self.chat:
            return
        self.records.append(rec)
        if isinstance(ev, MessageReceived):
            item = Inbound(
                seq=rec.seq,
                ts=rec.ts,
                msg_id=ev.msg_id,
                sender=ev.sender,
                push_name=ev.push_name,
                text=ev.text,
                kind=ev.kind,
                from_me=ev.from_me,
            )
            self.inbound[ev.msg_id] = self.undecided[ev.msg_id] = item
        elif isinstance(ev, MessageSkipped):
            self._skipped(rec, ev)
        elif isinstance(ev, SessionStarted):
            self.started[ev.session_id] = ev.reason
        elif isinstance(ev, LlmRequested):
            self._requested(rec, ev)
        elif isinstance(ev, LlmCompleted) and ev.call_id in self.by_call:
            self.by_call[ev.call_id].response = Response(
                seq=rec.seq,
                ts=rec.ts,
                content=ev.content,
                citations=ev.citations,
                usage=ev.usage,
                latency_ms=ev.latency_ms,
                finish_reason=ev.finish_reason,
            )
        elif isinstance(ev, LlmFailed) and ev.call_id in self.by_call:
            failure = Failure(
                seq=rec.seq,
                ts=rec.ts,
                error=ev.error,
                final=ev.final,
                attempt=ev.attempt,
                status=ev.status,
            )
            self.by_call[ev.call_id].failures.append(failure)
        elif isinstance(ev, ReplyPlanned):
            self._planned(rec, ev)
        elif isinstance(ev, ReplySent) and ev.reply_id in self.by_reply:
            self.by_reply[ev.reply_id].sent_ts = rec.ts
            self.by_reply[ev.reply_id].wa_id = ev.wa_id
        elif isinstance(ev, ReplyFailed) and ev.reply_id in self.by_reply:
            failure = Failure(
                seq=rec.seq, ts=rec.ts, error=ev.error, final=ev.final, attempt=ev.attempt
            )
            self.by_reply[ev.reply_id].failures.append(failure)
        self.last = rec

    def _new_turn(self, rec: Recorded, kind: Kind, msg_ids: Iterable[str]) -> Turn:
        ids = list(dict.fromkeys(msg_ids))
        for msg_id in ids:
            self.undecided.pop(msg_id, None)
        turn = Turn(
            n=len(self.turns) + 1,
            kind=kind,
            seq=rec.seq,
            ts=rec.ts,
            messages=[self.inbound[m] for m in ids if m in self.inbound],
        )
        self.turns.append(turn)
        return turn

    def _skipped(self, rec: Recorded, ev: MessageSkipped) -> None:
        prev = self.turns[-1] if self.turns else None
        burst = self.last is not None and self.last.seq == rec.seq - 1
        if prev is not None and prev.kind == "skipped" and prev.reason == ev.reason and burst:
            # One decision skipping a whole burst is one turn.
            self.undecided.pop(ev.msg_id, None)
            if ev.msg_id in self.inbound:
                prev.messages.append(self.inbound[ev.msg_id])
            return
        turn = self._new_turn(rec, "skipped", [ev.msg_id])
        turn.reason, turn.detail = ev.reason, ev.detail

    def _requested(self, rec: Recorded, ev: LlmRequested) -> None:
        turn = self._new_turn(rec, "answered", ev.trigger_ids)
        turn.session_id = ev.session_id
        turn.session_started = self.started.pop(ev.session_id, None)
        turn.config = self._config_info(ev.config_hash)
        turn.request = Call(
            call_id=ev.call_id, model=ev.model, params=ev.params, messages=ev.messages
        )
        self.by_call[ev.call_id] = turn

    def _planned(self, rec: Recorded, ev: ReplyPlanned) -> None:
        delivery = Delivery(
            reply_id=ev.reply_id,
            purpose=ev.purpose,
            text=ev.text,
            planned_seq=rec.seq,
            planned_ts=rec.ts,
            wa_id=ev.wa_id,
        )
        self.by_reply[ev.reply_id] = delivery
        turn = self.by_call.get(ev.call_id or "")
        if turn is None:
            reset = [s for s, reason in self.started.items() if reason == "reset"]
            kind: Kind = "reset" if reset else ev.purpose
            msg_ids = [*ev.trigger_ids, *([ev.in_reply_to] if ev.in_reply_to else [])]
            turn = self._new_turn(rec, kind, msg_ids)
            if reset:
                turn.session_id, turn.session_started = reset[-1], self.started.pop(reset[-1])
        turn.replies.append(delivery)

    def _config_info(self, digest: str) -> ConfigInfo:
        index = max((i for i, (h, _) in enumerate(self.configs) if h == digest), default=None)
        if index is None:
            return ConfigInfo(hash=digest, changed=None)
        config = self.configs[index][1]
        before = [c for h, c in self.configs[:index] if h != digest]
        return ConfigInfo(hash=digest, changed=changes(before[-1], config) if before else None)

    def finish(self) -> Audit:
        if self.undecided:
            first = next(iter(self.undecided.values()))
            turn = Turn(
                n=len(self.turns) + 1,
                kind="pending",
                seq=first.seq,
                ts=first.ts,
                messages=list(self.undecided.values()),
            )
            self.turns.append(turn)
        return Audit(chat=self.chat, turns=self.turns, records=self.records)
