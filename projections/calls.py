"""Every LLM call of a chat, with the inputs the agent had when it made the request.

A fold over the chat's events and the chat-less ones (configs): every
projection is folded along, and just before an ``LlmRequested`` of the chat is
folded the states are read exactly as the agent read them: the queue items
named by ``trigger_ids``, the session's context and the config whose hash the
request carries. ``replay.py`` composes each call again from these inputs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from events.model import (
    EVENT_TYPES,
    ChatTurn,
    Citation,
    ConfigLoaded,
    LlmCompleted,
    LlmFailed,
    LlmRequested,
    Recorded,
    ReplyPlanned,
    Usage,
)
from projections import sessions
from projections.base import Handlers, dispatcher
from projections.fold import ALL, States
from projections.queue import Item


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """What the recorded call produced; ``content`` None when it never completed."""

    content: str | None = None
    citations: list[Citation] = []
    usage: Usage | None = None
    latency_ms: float | None = None
    reply: str | None = None  # the reply planned for sending
    error: str | None = None  # the final failure, if any


class Inputs(msgspec.Struct, frozen=True, kw_only=True):
    """What composing the prompt needs; set only when all of it is still in the log."""

    config: dict[str, Any]  # the ConfigLoaded.config the request names by hash
    items: list[Item]  # the trigger messages, in order
    context: list[ChatTurn]
    # The calls whose answers are the context's assistant turns, oldest first.
    context_calls: list[str]


class Call(msgspec.Struct, frozen=True, kw_only=True):
    index: int  # 1-based, in log order
    seq: int
    ts: float
    request: LlmRequested
    inputs: Inputs | None
    problem: str = ""  # why ``inputs`` is None
    outcome: Outcome = Outcome()

    @property
    def call_id(self) -> str:
        return self.request.call_id

    @property
    def session_id(self) -> str:
        return self.request.session_id


class State(msgspec.Struct, kw_only=True):
    chat: str
    states: States = msgspec.field(default_factory=States)  # as the agent saw them
    configs: dict[str, dict[str, Any]] = {}  # hash -> config
    calls: list[Call] = []
    session_calls: dict[str, list[str]] = {}  # session_id -> calls in its context
    outcomes: dict[str, Outcome] = {}


def calls(records: Iterable[Recorded], chat: str) -> list[Call]:
    """The LLM calls of ``chat`` in log order, each with its inputs and outcome."""
    state = State(chat=chat)
    for rec in records:
        apply(state, rec)
    return finish(state)


def finish(state: State) -> list[Call]:
    return [
        msgspec.structs.replace(c, outcome=state.outcomes.get(c.call_id, Outcome()))
        for c in state.calls
    ]


def _step(state: State, rec: Recorded, ev: Any) -> None:
    """Note what the chat's calls need first, then fold every projection along."""
    if isinstance(ev, ConfigLoaded):
        state.configs[ev.hash] = ev.config
    elif ev.chat == state.chat:
        _note(state, rec, ev)
    for projection in ALL:
        projection.apply(getattr(state.states, projection.name), rec)


def _note(state: State, rec: Recorded, ev: Any) -> None:
    if isinstance(ev, LlmRequested):
        state.calls.append(_call(state, rec, ev))
    elif isinstance(ev, LlmCompleted):
        # As projections.sessions does: the answer joins the context only if the
        # call is still pending in a session that still exists.
        pending = state.states.sessions.pending.get(ev.call_id)
        if pending is not None and pending.session_id in state.states.sessions.sessions:
            state.session_calls.setdefault(pending.session_id, []).append(ev.call_id)
        _update(
            state,
            ev.call_id,
            content=ev.content,
            citations=ev.citations,
            usage=ev.usage,
            latency_ms=ev.latency_ms,
        )
    elif isinstance(ev, LlmFailed) and ev.final:
        _update(state, ev.call_id, error=ev.error)
    elif isinstance(ev, ReplyPlanned) and ev.call_id is not None and ev.purpose == "reply":
        _update(state, ev.call_id, reply=ev.text)


def _update(state: State, call_id: str, **fields: object) -> None:
    old = state.outcomes.get(call_id, Outcome())
    state.outcomes[call_id] = msgspec.structs.replace(old, **fields)


def _call(state: State, rec: Recorded, ev: LlmRequested) -> Call:
    inputs: Inputs | None = None
    try:
        inputs = _inputs(state, ev)
        problem = ""
    except _Gone as gone:
        problem = str(gone)
    return Call(
        index=len(state.calls) + 1,
        seq=rec.seq,
        ts=rec.ts,
        request=ev,
        inputs=inputs,
        problem=problem,
    )


def _inputs(state: State, ev: LlmRequested) -> Inputs:
    config = state.configs.get(ev.config_hash)
    if config is None:
        raise _Gone(f"config {ev.config_hash[:12]} is not in the log")
    queued = state.states.queue.chats.get(state.chat, {})
    missing = [m for m in ev.trigger_ids if m not in queued]
    if missing or not ev.trigger_ids:
        raise _Gone(f"trigger messages not in the queue: {', '.join(missing) or 'none given'}")
    session = state.states.sessions.sessions.get(ev.session_id)
    if session is None:
        raise _Gone(f"session {ev.session_id} is not in the log")
    context = sessions.context(session)
    answers = sum(1 for t in context if t.role == "assistant")
    earlier = state.session_calls.get(ev.session_id, [])
    return Inputs(
        config=config,
        items=[queued[m] for m in ev.trigger_ids],
        context=context,
        context_calls=earlier[len(earlier) - answers :] if answers else [],
    )


class _Gone(Exception):
    """An input of a call is no longer in the log (compacted, or never recorded)."""


_HANDLERS: Handlers[State] = dict.fromkeys(EVENT_TYPES, _step)
apply = dispatcher(_HANDLERS)
