"""A chat's history as turns: what came in, what was decided and why, what went out.

A fold over one chat's events (plus every ``ConfigLoaded``), for ``audit``
and anything else that shows a chat. A turn is one decision about inbound
messages: an LLM call (with its request, answer and replies), a skip with its
reason, a reply without a call (``/reset``, an owner command), a message
that could not be read (never answered), the owner's ``/pause`` or
``/resume`` of the chat, messages whose decision a compaction removed (the
message itself kept, e.g. as the one tying a person's ids together), or
messages still undecided. Turns are in log order. A turn whose model
called tools holds every round: each call with its arguments and result,
each round's answer and cost, and, should the model have stayed silent, why.
Each message sent says
how far it got: the server (sent), the recipient's phone, read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec

from events.model import (
    MEDIA_OUTCOMES,
    ChatPaused,
    ChatResumed,
    ChatTurn,
    Citation,
    Compacted,
    ConfigLoaded,
    FactForgotten,
    FactRemembered,
    LlmCompleted,
    LlmFailed,
    LlmRequested,
    Media,
    MediaFetched,
    MediaOutcome,
    MessageEdited,
    MessageReceived,
    MessageRevoked,
    MessageSkipped,
    MessageUndecryptable,
    OwnerAlerted,
    ReceiptState,
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
    SpeechFailed,
    SpeechSynthesized,
    ToolCalled,
    ToolFinished,
    TransportStatus,
    Usage,
)
from projections.base import Handler, Handlers, dispatcher
from projections.config_diff import changes
from projections.deliveries import ORDER

Kind = Literal[
    "answered",
    "skipped",
    "reset",
    "reply",
    "startup",
    "vitality",
    "debug",
    "alert",
    "reminder",
    "command",
    "undecryptable",
    "paused",
    "resumed",
    "silent",
    "compacted",
    "pending",
]


_ISO = "%Y-%m-%dT%H:%M:%SZ"


class Incoming(msgspec.Struct, kw_only=True):
    seq: int
    ts: float
    msg_id: str
    sender: str
    push_name: str | None
    text: str
    kind: str
    from_me: bool
    edits: list[str | None] = []  # later texts, oldest first (None: not readable)
    revoked: bool = False
    media: Media | None = None
    attached: list[MediaOutcome] = []  # transcripts, failed attempts, a document's text


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


class ToolUse(msgspec.Struct, kw_only=True):
    """One tool call of a turn: what the model asked and what it got back."""

    seq: int
    ts: float
    round: int
    tool_call_id: str
    name: str
    arguments: str  # as the model wrote them
    output: str | None = None  # None: no result recorded
    error: bool = False


EffectKind = Literal[
    "reminder_set",
    "reminder_cancelled",
    "reminder_fired",
    "reminder_missed",
    "fact_remembered",
    "fact_forgotten",
]


class Effect(msgspec.Struct, kw_only=True):
    """What a tool did (a reminder set or cancelled, a fact kept or dropped), or a
    reminder firing: shown with the turn that did it."""

    seq: int
    ts: float
    kind: EffectKind
    subject: str = ""  # the reminder's id
    text: str = ""  # the reminder's or the fact's words
    at: float | None = None  # when the reminder is due


class Delivery(msgspec.Struct, kw_only=True):
    reply_id: str
    purpose: str
    text: str
    planned_seq: int
    planned_ts: float
    wa_id: str | None
    sent_ts: float | None = None  # when the log recorded the transport's confirmation
    failures: list[Failure] = []
    # What WhatsApp reported, state -> when it happened (the first report of each).
    receipts: dict[str, float] = {}
    # The furthest state reached: "server" once sent; None while not sent.
    reached: ReceiptState | None = None
    # A part planned to be spoken: "model/voice"; its speech once made, failures to make it.
    speech_plan: str | None = None
    speech: SpeechSynthesized | None = None
    speech_failures: list[Failure] = []


class ConfigInfo(msgspec.Struct, kw_only=True, omit_defaults=True):
    hash: str
    # Key paths changed since the config loaded before this one; None for the first.
    changed: list[str] | None
    experiment: str | None = None  # the replay experiment it was applied from (left out if none)


class Request(msgspec.Struct, kw_only=True):
    call_id: str
    model: str
    params: dict[str, Any]
    messages: list[ChatTurn]


class Turn(msgspec.Struct, kw_only=True):
    n: int
    kind: Kind
    seq: int
    ts: float
    messages: list[Incoming] = []
    reason: str | None = None  # why skipped
    detail: str = ""
    session_id: str | None = None
    session_started: str | None = None  # the SessionStarted reason, when this turn began it
    config: ConfigInfo | None = None
    request: Request | None = None
    failures: list[Failure] = []
    response: Response | None = None
    replies: list[Delivery] = []
    # The tool loop: the answers that called tools (each a paid call), and the calls.
    rounds: list[Response] = []
    tools: list[ToolUse] = []
    calls: list[str] = []  # the call ids of its LLM calls, the tool loop's rounds after the first
    effects: list[Effect] = []  # what its tools did; a reminder's firing, on its own turn


class Audit(msgspec.Struct, kw_only=True):
    chat: str
    turns: list[Turn]
    records: list[Recorded]  # the chat's events and every ConfigLoaded, in log order


class State(msgspec.Struct, kw_only=True):
    """The timeline of ``chat`` so far; ``finish`` turns it into an ``Audit``."""

    chat: str
    records: list[Recorded] = []
    configs: list[ConfigLoaded] = []  # in log order
    turns: list[Turn] = []
    inbound: dict[str, Incoming] = {}
    undecided: dict[str, Incoming] = {}
    started: dict[str, str] = {}  # session_id -> reason, until a turn claims it
    by_call: dict[str, Turn] = {}
    by_reply: dict[str, Delivery] = {}
    by_tool: dict[str, ToolUse] = {}
    fired: dict[str, Effect] = {}  # reply_id -> a reminder's firing, until its ReplyPlanned
    last_seq: int = 0
    compactions: list[tuple[Recorded, Compacted]] = []  # those that may have removed its events


def audit(records: Iterable[Recorded], chat: str) -> Audit:
    """The timeline of ``chat`` from ``records`` (the chat's events and the configs)."""
    state = State(chat=chat)
    for rec in records:
        apply(state, rec)
    return finish(state)


def finish(state: State) -> Audit:
    """The turns in log order, numbered from 1: a message whose decision a compaction
    removed as a ``compacted`` turn in its place; those nothing decided about yet as a
    last ``pending`` turn."""
    turns = list(state.turns)
    waiting = []
    for item in state.undecided.values():
        removed_by = _removed_by(state, item)
        if removed_by is None:
            waiting.append(item)
            continue
        rec, ev = removed_by
        detail = f"at seq {rec.seq}, {_utc(rec.ts)}"
        turn = Turn(n=0, kind="compacted", seq=item.seq, ts=item.ts, reason=ev.reason)
        turn.messages, turn.detail = [item], detail
        turns.append(turn)
    turns.sort(key=lambda t: t.seq)  # stable: a compacted message's turn where it came
    if waiting:
        first = waiting[0]
        turns.append(Turn(n=0, kind="pending", seq=first.seq, ts=first.ts, messages=waiting))
    numbered = [msgspec.structs.replace(t, n=n) for n, t in enumerate(turns, start=1)]
    return Audit(chat=state.chat, turns=numbered, records=list(state.records))


def _removed_by(state: State, item: Incoming) -> tuple[Recorded, Compacted] | None:
    """The compaction that removed ``item``'s decision, if the log says one did.

    One recorded after it that reached below its seq in this chat; and either a
    rotation's cut-off older than it (it stayed only as one kept on purpose: its
    decision, then as old, went) or a later message of the chat decided (messages
    are decided in order, so its decision was there). Else it may still wait.
    """
    later = any(
        m.seq > item.seq for t in state.turns if t.kind != "undecryptable" for m in t.messages
    )
    for rec, ev in reversed(state.compactions):
        reached = rec.seq > item.seq and item.seq < ev.before
        cut = ev.older_than is not None and item.ts < ev.older_than
        if reached and (cut or later):
            return rec, ev
    return None


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime(_ISO)


def _config(state: State, rec: Recorded, ev: ConfigLoaded) -> None:
    state.configs.append(ev)
    state.records.append(rec)


def _of_chat(handler: Callable[[State, Recorded, Any], None]) -> Handler[State]:
    """``handler`` for the chat's own events only; every one is kept as a record."""

    def handle(state: State, rec: Recorded, ev: Any) -> None:
        if ev.chat != state.chat:
            return
        state.records.append(rec)
        handler(state, rec, ev)
        state.last_seq = rec.seq

    return handle


def _received(state: State, rec: Recorded, ev: MessageReceived) -> None:
    item = Incoming(
        seq=rec.seq,
        ts=rec.ts,
        msg_id=ev.msg_id,
        sender=ev.sender,
        push_name=ev.push_name,
        text=ev.text,
        kind=ev.kind,
        from_me=ev.from_me,
        media=ev.media,
    )
    state.inbound[ev.msg_id] = state.undecided[ev.msg_id] = item


def _fetched(state: State, rec: Recorded, ev: MediaFetched) -> None:
    item = state.inbound.get(ev.msg_id)
    if item is not None:
        item.media = ev.media


def _undecryptable(state: State, rec: Recorded, ev: MessageUndecryptable) -> None:
    """Its own turn at once: nothing is ever decided about it (there is nothing to read)."""
    item = Incoming(
        seq=rec.seq,
        ts=rec.ts,
        msg_id=ev.msg_id,
        sender=ev.sender,
        push_name=None,
        text="",
        kind="undecryptable",
        from_me=ev.from_me,
    )
    state.inbound.setdefault(ev.msg_id, item)  # a revoke may name it
    turn = Turn(
        n=len(state.turns) + 1,
        kind="undecryptable",
        seq=rec.seq,
        ts=rec.ts,
        messages=[item],
        reason=ev.reason,
        detail=ev.detail,
    )
    state.turns.append(turn)


def _paused(state: State, rec: Recorded, ev: ChatPaused | ChatResumed) -> None:
    """The owner's /pause or /resume of this chat: a turn of its own, no message.
    ``detail``: when a pause ends by itself (ISO, UTC); "" for at /resume."""
    until = ev.until if isinstance(ev, ChatPaused) else None
    turn = Turn(
        n=len(state.turns) + 1,
        kind="paused" if isinstance(ev, ChatPaused) else "resumed",
        seq=rec.seq,
        ts=rec.ts,
        detail=_utc(until) if until is not None else "",
    )
    state.turns.append(turn)


def _attached(state: State, rec: Recorded, ev: MediaOutcome) -> None:
    item = state.inbound.get(ev.msg_id)
    if item is not None:
        item.attached.append(ev)


def _edited(state: State, rec: Recorded, ev: MessageEdited) -> None:
    item = state.inbound.get(ev.msg_id)
    if item is not None:
        item.edits.append(ev.text)


def _revoked(state: State, rec: Recorded, ev: MessageRevoked) -> None:
    item = state.inbound.get(ev.msg_id)
    if item is not None:
        item.revoked = True


def _session(state: State, rec: Recorded, ev: SessionStarted) -> None:
    state.started[ev.session_id] = ev.reason


def _completed(state: State, rec: Recorded, ev: LlmCompleted) -> None:
    turn = state.by_call.get(ev.call_id)
    if turn is None:
        return
    response = Response(
        seq=rec.seq,
        ts=rec.ts,
        content=ev.content,
        citations=ev.citations,
        usage=ev.usage,
        latency_ms=ev.latency_ms,
        finish_reason=ev.finish_reason,
    )
    if ev.tool_calls:
        turn.rounds.append(response)
    else:
        turn.response = response


def _tool_called(state: State, rec: Recorded, ev: ToolCalled) -> None:
    turn = state.by_call.get(ev.call_id)
    if turn is not None:
        use = ToolUse(
            seq=rec.seq,
            ts=rec.ts,
            round=ev.round,
            tool_call_id=ev.tool_call_id,
            name=ev.name,
            arguments=ev.arguments,
        )
        turn.tools.append(use)
        state.by_tool[f"{ev.call_id}|{ev.tool_call_id}"] = use


def _tool_finished(state: State, rec: Recorded, ev: ToolFinished) -> None:
    use = state.by_tool.get(f"{ev.call_id}|{ev.tool_call_id}")
    if use is not None:
        use.output, use.error = ev.output, ev.error


def _withheld(state: State, rec: Recorded, ev: ReplyWithheld) -> None:
    turn = state.by_call.get(ev.call_id)
    if turn is not None:
        turn.kind, turn.reason = "silent", ev.reason


def _effect(state: State, rec: Recorded, ev: ReminderSet | ReminderCancelled) -> None:
    """A tool's effect, under the turn whose call made it (else a turn of its own)."""
    if isinstance(ev, ReminderSet):
        effect = Effect(
            seq=rec.seq,
            ts=rec.ts,
            kind="reminder_set",
            subject=ev.reminder_id,
            text=ev.text,
            at=ev.at,
        )
    else:
        effect = Effect(
            seq=rec.seq,
            ts=rec.ts,
            kind="reminder_cancelled",
            subject=ev.reminder_id,
            text="" if ev.reason == "asked" else "the chat is no longer monitored",
        )
    _attach(state, rec, ev.call_id, effect)


def _fact(state: State, rec: Recorded, ev: FactRemembered | FactForgotten) -> None:
    if isinstance(ev, FactRemembered):
        effect = Effect(seq=rec.seq, ts=rec.ts, kind="fact_remembered", text=ev.fact)
    else:
        said = "; ".join(ev.facts)
        effect = Effect(seq=rec.seq, ts=rec.ts, kind="fact_forgotten", subject=ev.reason, text=said)
    _attach(state, rec, ev.call_id, effect)


def _attach(state: State, rec: Recorded, call_id: str, effect: Effect) -> None:
    turn = state.by_call.get(call_id)
    if turn is None:
        # Recorded without a call (by hand, or the call went in a compaction).
        turn = Turn(n=len(state.turns) + 1, kind="reminder", seq=rec.seq, ts=rec.ts)
        state.turns.append(turn)
    turn.effects.append(effect)


def _fired(state: State, rec: Recorded, ev: ReminderFired) -> None:
    kind: EffectKind = "reminder_missed" if ev.missed else "reminder_fired"
    state.fired[ev.reply_id] = Effect(seq=rec.seq, ts=rec.ts, kind=kind, subject=ev.reminder_id)


def _llm_failed(state: State, rec: Recorded, ev: LlmFailed) -> None:
    turn = state.by_call.get(ev.call_id)
    if turn is not None:
        turn.failures.append(_failure(rec, ev))


def _sent(state: State, rec: Recorded, ev: ReplySent) -> None:
    delivery = state.by_reply.get(ev.reply_id)
    if delivery is not None:
        delivery.sent_ts = rec.ts
        delivery.wa_id = ev.wa_id
        delivery.reached = _furthest(delivery)


def _receipt(state: State, rec: Recorded, ev: ReplyDelivered) -> None:
    delivery = state.by_reply.get(ev.reply_id)
    if delivery is not None:
        delivery.receipts.setdefault(ev.state, ev.at)
        delivery.reached = _furthest(delivery)


def _furthest(delivery: Delivery) -> ReceiptState | None:
    """Never backwards: a ``read`` reported after ``played`` leaves it ``played``."""
    reported = [state for state in ORDER if state in delivery.receipts]
    if reported:
        return reported[-1]
    return "server" if delivery.sent_ts is not None else None


def _send_failed(state: State, rec: Recorded, ev: ReplyFailed) -> None:
    delivery = state.by_reply.get(ev.reply_id)
    if delivery is not None:
        delivery.failures.append(_failure(rec, ev))


def _spoken(state: State, rec: Recorded, ev: SpeechSynthesized) -> None:
    delivery = state.by_reply.get(ev.reply_id)
    if delivery is not None:
        delivery.speech = ev


def _not_spoken(state: State, rec: Recorded, ev: SpeechFailed) -> None:
    delivery = state.by_reply.get(ev.reply_id)
    if delivery is not None:
        delivery.speech_failures.append(_failure(rec, ev))


def _failure(rec: Recorded, ev: LlmFailed | ReplyFailed | SpeechFailed) -> Failure:
    """One failed attempt as a turn shows it (a send failure has no HTTP status)."""
    status = None if isinstance(ev, ReplyFailed) else ev.status
    return Failure(
        seq=rec.seq, ts=rec.ts, error=ev.error, final=ev.final, attempt=ev.attempt, status=status
    )


def _new_turn(state: State, rec: Recorded, kind: Kind, msg_ids: Iterable[str]) -> Turn:
    ids = list(dict.fromkeys(msg_ids))
    for msg_id in ids:
        state.undecided.pop(msg_id, None)
    turn = Turn(
        n=len(state.turns) + 1,
        kind=kind,
        seq=rec.seq,
        ts=rec.ts,
        messages=[state.inbound[m] for m in ids if m in state.inbound],
    )
    state.turns.append(turn)
    return turn


def _skipped(state: State, rec: Recorded, ev: MessageSkipped) -> None:
    prev = state.turns[-1] if state.turns else None
    burst = state.last_seq == rec.seq - 1
    if prev is not None and prev.kind == "skipped" and prev.reason == ev.reason and burst:
        # One decision skipping a whole burst is one turn.
        state.undecided.pop(ev.msg_id, None)
        if ev.msg_id in state.inbound:
            prev.messages.append(state.inbound[ev.msg_id])
        return
    turn = _new_turn(state, rec, "skipped", [ev.msg_id])
    turn.reason, turn.detail = ev.reason, ev.detail


def _requested(state: State, rec: Recorded, ev: LlmRequested) -> None:
    earlier = _loop_turn(state, ev)
    if earlier is not None:
        state.by_call[ev.call_id] = earlier  # a later round of the turn's tool loop
        earlier.calls.append(ev.call_id)
        return
    turn = _new_turn(state, rec, "answered", ev.trigger_ids)
    turn.session_id = ev.session_id
    turn.session_started = state.started.pop(ev.session_id, None)
    turn.config = _config_info(state, ev.config_hash)
    turn.request = Request(
        call_id=ev.call_id, model=ev.model, params=ev.params, messages=ev.messages
    )
    turn.calls.append(ev.call_id)
    state.by_call[ev.call_id] = turn


def _loop_turn(state: State, ev: LlmRequested) -> Turn | None:
    """The turn a later round of a tool loop belongs to: the last one asked for its messages."""
    if not ev.rounds:
        return None
    return next(
        (
            t
            for t in reversed(state.turns)
            if t.request is not None and [m.msg_id for m in t.messages] == ev.trigger_ids
        ),
        None,
    )


def _planned(state: State, rec: Recorded, ev: ReplyPlanned) -> None:
    delivery = Delivery(
        reply_id=ev.reply_id,
        purpose=ev.purpose,
        text=ev.text,
        planned_seq=rec.seq,
        planned_ts=rec.ts,
        wa_id=ev.wa_id,
        speech_plan=f"{ev.speech.model}/{ev.speech.voice}" if ev.speech is not None else None,
    )
    state.by_reply[ev.reply_id] = delivery
    turn = state.by_call.get(ev.call_id or "")
    if turn is None:
        reset = [s for s, reason in state.started.items() if reason == "reset"]
        kind: Kind = "reset" if reset else ev.purpose
        msg_ids = [*ev.trigger_ids, *([ev.in_reply_to] if ev.in_reply_to else [])]
        turn = _new_turn(state, rec, kind, msg_ids)
        if reset:
            turn.session_id, turn.session_started = reset[-1], state.started.pop(reset[-1])
    fired = state.fired.pop(ev.reply_id, None)
    if fired is not None:
        turn.effects.append(fired)
    turn.replies.append(delivery)


def _config_info(state: State, digest: str) -> ConfigInfo:
    index = max((i for i, c in enumerate(state.configs) if c.hash == digest), default=None)
    if index is None:
        return ConfigInfo(hash=digest, changed=None)
    loaded = state.configs[index]
    before = [c.config for c in state.configs[:index] if c.hash != digest]
    return ConfigInfo(
        hash=digest,
        changed=changes(before[-1], loaded.config) if before else None,
        experiment=loaded.experiment,
    )


def _ignored(state: State, rec: Recorded, ev: Any) -> None:
    """Kept as a record (connection states, compactions of this chat), no turn."""


def _compacted(state: State, rec: Recorded, ev: Compacted) -> None:
    """A compaction that may have removed events of this chat (filed under no chat)."""
    mine = ev.chats is None or state.chat in ev.chats
    if mine and (not ev.by_chat or ev.by_chat.get(state.chat, 0) > 0):
        state.compactions.append((rec, ev))
    if ev.chat == state.chat:
        state.records.append(rec)


_HANDLERS: Handlers[State] = {
    ConfigLoaded: _config,
    MessageReceived: _of_chat(_received),
    MessageEdited: _of_chat(_edited),
    MessageRevoked: _of_chat(_revoked),
    MediaFetched: _of_chat(_fetched),
    MessageUndecryptable: _of_chat(_undecryptable),
    ChatPaused: _of_chat(_paused),
    ChatResumed: _of_chat(_paused),
    **dict.fromkeys(MEDIA_OUTCOMES, _of_chat(_attached)),
    MessageSkipped: _of_chat(_skipped),
    SessionStarted: _of_chat(_session),
    LlmRequested: _of_chat(_requested),
    LlmCompleted: _of_chat(_completed),
    LlmFailed: _of_chat(_llm_failed),
    ToolCalled: _of_chat(_tool_called),
    ToolFinished: _of_chat(_tool_finished),
    ReplyWithheld: _of_chat(_withheld),
    ReminderSet: _of_chat(_effect),
    ReminderCancelled: _of_chat(_effect),
    ReminderFired: _of_chat(_fired),
    FactRemembered: _of_chat(_fact),
    FactForgotten: _of_chat(_fact),
    ReplyPlanned: _of_chat(_planned),
    ReplySent: _of_chat(_sent),
    ReplyFailed: _of_chat(_send_failed),
    ReplyDelivered: _of_chat(_receipt),
    SpeechSynthesized: _of_chat(_spoken),
    SpeechFailed: _of_chat(_not_spoken),
    TransportStatus: _of_chat(_ignored),
    OwnerAlerted: _of_chat(_ignored),
    Compacted: _compacted,
}
apply = dispatcher(_HANDLERS)
