"""Every LLM call of a chat, with the inputs the agent had when it made the request.

A fold over the chat's events and the chat-less ones (configs): every
projection is folded along, and just before an ``LlmRequested`` of the chat is
folded the states are read exactly as the agent read them: the queue items
named by ``trigger_ids``, the session's context and the config whose hash the
request carries. ``replay.py`` composes each call again from these inputs.

A turn whose model called tools is one call: its first request, with the
later rounds' requests (``rounds``), every tool call and result
(``Outcome.tools``), the cost of all its rounds, and its end (the reply, or
``Outcome.silent`` when the model stayed silent).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

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
    ReplyWithheld,
    ToolCalled,
    ToolFinished,
    Usage,
)
from projections import aliases, facts, group_talk, reminders, sessions
from projections.base import Handlers, dispatcher
from projections.fold import ALL, States
from projections.queue import Item


class ToolTrace(msgspec.Struct, frozen=True, kw_only=True):
    """One tool call of a turn and its result; ``source``: ``recorded`` (the log's),
    or, in a replay, ``simulated`` (no such call was recorded)."""

    round: int
    name: str
    arguments: str
    output: str | None = None
    error: bool = False
    source: Literal["recorded", "simulated"] = "recorded"


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """What the recorded call produced; ``content`` None when it never completed."""

    content: str | None = None
    citations: list[Citation] = []
    usage: Usage | None = None  # of all the turn's rounds
    latency_ms: float | None = None
    reply: str | None = None  # the reply planned for sending
    error: str | None = None  # the final failure, if any
    silent: str | None = None  # the model stayed silent, for this reason
    tools: list[ToolTrace] = []


class Inputs(msgspec.Struct, frozen=True, kw_only=True):
    """What composing the prompt needs; set only when all of it is still in the log."""

    config: dict[str, Any]  # the ConfigLoaded.config the request names by hash
    items: list[Item]  # the trigger messages, in order
    context: list[ChatTurn]
    # The calls whose answers are the context's assistant turns, oldest first.
    context_calls: list[str]
    facts: list[str] = []  # what the model had kept about the chat (tool ``remember``)
    # The chat's pending reminders then: what a replayed list_reminders would see.
    pending: list[reminders.Reminder] = []
    # In a group: what was said there since the bot last answered (the config picks).
    heard: list[group_talk.Heard] = []
    # Every form the bot knew of the ids the trigger messages name (``aliases.named_by``).
    known: dict[str, list[str]] = {}


class Call(msgspec.Struct, frozen=True, kw_only=True):
    index: int  # 1-based, in log order
    seq: int
    ts: float
    request: LlmRequested
    inputs: Inputs | None
    problem: str = ""  # why ``inputs`` is None
    outcome: Outcome = Outcome()
    rounds: list[LlmRequested] = []  # the later rounds' requests of its tool loop

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
    roots: dict[str, str] = {}  # call_id of a later round -> the turn's first call_id
    later: dict[str, list[LlmRequested]] = {}  # first call_id -> its later rounds


def calls(records: Iterable[Recorded], chat: str) -> list[Call]:
    """The LLM calls of ``chat`` in log order, each with its inputs and outcome."""
    state = State(chat=chat)
    for rec in records:
        apply(state, rec)
    return finish(state)


def finish(state: State) -> list[Call]:
    return [
        msgspec.structs.replace(
            c,
            outcome=state.outcomes.get(c.call_id, Outcome()),
            rounds=state.later.get(c.call_id, []),
        )
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
        _requested(state, rec, ev)
    elif isinstance(ev, LlmCompleted):
        _completed(state, ev)
    elif isinstance(ev, LlmFailed) and ev.final:
        _update(state, ev.call_id, error=ev.error)
    elif isinstance(ev, ReplyPlanned) and ev.call_id is not None and ev.purpose == "reply":
        _update(state, ev.call_id, reply=ev.text)
    elif isinstance(ev, ToolCalled):
        trace = ToolTrace(round=ev.round, name=ev.name, arguments=ev.arguments)
        tools = state.outcomes.get(_root(state, ev.call_id), Outcome()).tools
        _update(state, ev.call_id, tools=[*tools, trace])
    elif isinstance(ev, ToolFinished):
        tools = list(state.outcomes.get(_root(state, ev.call_id), Outcome()).tools)
        if tools:  # its ToolCalled is in the same commit, just before it
            tools[-1] = msgspec.structs.replace(tools[-1], output=ev.output, error=ev.error)
            _update(state, ev.call_id, tools=tools)
    elif isinstance(ev, ReplyWithheld):
        _update(state, ev.call_id, silent=ev.reason)


def _requested(state: State, rec: Recorded, ev: LlmRequested) -> None:
    """A first round is a new call; a later round of its tool loop (the same messages
    as the chat's latest call: its turns go one at a time) joins it."""
    opened = state.calls[-1].request if state.calls else None
    if ev.rounds and opened is not None and opened.trigger_ids == ev.trigger_ids:
        state.roots[ev.call_id] = opened.call_id
        state.later.setdefault(opened.call_id, []).append(ev)
        return
    state.calls.append(_call(state, rec, ev))


def _completed(state: State, ev: LlmCompleted) -> None:
    """An answer: the turn's (its context, its text), or a round's (its cost only)."""
    root = _root(state, ev.call_id)
    spent = state.outcomes.get(root, Outcome()).usage
    usage = ev.usage if spent is None else added(spent, ev.usage)
    if ev.tool_calls:
        _update(state, ev.call_id, usage=usage)
        return
    # As projections.sessions does: the answer joins the context only if the
    # call is still pending in a session that still exists.
    pending = state.states.sessions.pending.get(ev.call_id)
    if pending is not None and pending.session_id in state.states.sessions.sessions:
        state.session_calls.setdefault(pending.session_id, []).append(root)
    _update(
        state,
        ev.call_id,
        content=ev.content,
        citations=ev.citations,
        usage=usage,
        latency_ms=ev.latency_ms,
    )


def added(a: Usage, b: Usage) -> Usage:
    """Two calls' usage together (a cost unknown to both stays unknown)."""
    known = [c for c in (a.cost_usd, b.cost_usd) if c is not None]
    return Usage(
        input_tokens=a.input_tokens + b.input_tokens,
        output_tokens=a.output_tokens + b.output_tokens,
        total_tokens=a.total_tokens + b.total_tokens,
        cost_usd=sum(known) if known else None,
    )


def _root(state: State, call_id: str) -> str:
    return state.roots.get(call_id, call_id)


def _update(state: State, call_id: str, **fields: object) -> None:
    root = _root(state, call_id)
    old = state.outcomes.get(root, Outcome())
    state.outcomes[root] = msgspec.structs.replace(old, **fields)


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
    items = [queued[m] for m in ev.trigger_ids]
    return Inputs(
        config=config,
        items=items,
        context=context,
        context_calls=earlier[len(earlier) - answers :] if answers else [],
        facts=facts.of_chat(state.states.facts, state.states.aliases, ev.chat),
        pending=reminders.of_chat(
            state.states.reminders, aliases.forms(state.states.aliases, ev.chat) | {ev.chat}
        ),
        heard=group_talk.since_spoke(
            state.states.group_talk, state.chat, frozenset(ev.trigger_ids)
        ),
        known=aliases.named_by(state.states.aliases, (i.message for i in items)),
    )


class _Gone(Exception):
    """An input of a call is no longer in the log (compacted, or never recorded)."""


_HANDLERS: Handlers[State] = dict.fromkeys(EVENT_TYPES, _step)
apply = dispatcher(_HANDLERS)
