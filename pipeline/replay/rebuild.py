"""Every LLM turn of a chat, with the inputs the agent had when it made the request.

Pure: all projections are folded over the records in log order, and just
before an ``LlmRequested`` of the chat is folded the state is read exactly as
the agent read it: the queue items named by ``trigger_ids``, the session's
context and the config whose hash the request carries.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import msgspec

from events.model import (
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
from pipeline.config import AppConfig, ConfigError, Entity, config_from_dict
from pipeline.decide import entity_for
from pipeline.request import Request, user_text
from projections import sessions
from projections.fold import States, dispatch_table, feed


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """What the recorded call produced; ``content`` None when it never completed."""

    content: str | None = None
    citations: list[Citation] = []
    usage: Usage | None = None
    latency_ms: float | None = None
    reply: str | None = None  # the reply planned for sending
    error: str | None = None  # the final failure, if any


class Inputs(msgspec.Struct, frozen=True, kw_only=True):
    """What ``build_request`` needs; set only when all of it is still in the log."""

    config: AppConfig
    entity: Entity
    context: list[ChatTurn]
    # The calls whose answers are the context's assistant turns, oldest first.
    context_calls: list[str]
    text: str


class Turn(msgspec.Struct, frozen=True, kw_only=True):
    index: int  # 1-based, in log order
    seq: int
    ts: float
    call_id: str
    session_id: str
    config_hash: str
    recorded: Request
    inputs: Inputs | None
    problem: str = ""  # why ``inputs`` is None
    outcome: Outcome = Outcome()


def turns(records: Iterable[Recorded], chat: str) -> list[Turn]:
    """The LLM turns of ``chat`` in log order, each with its inputs and outcome."""
    states = States()
    collector = _Collector(chat, states)
    feed(states, dispatch_table(states), collector.watch(records))
    return collector.finish()


class _Collector:
    def __init__(self, chat: str, states: States) -> None:
        self.chat = chat
        self.states = states
        self.config_dicts: dict[str, ConfigLoaded] = {}
        self.configs: dict[str, AppConfig | str] = {}  # hash -> config, or why it is unusable
        self.turns: list[Turn] = []
        self.session_of: dict[str, str] = {}  # call_id -> session_id
        self.session_calls: dict[str, list[str]] = {}  # session_id -> calls in its turns
        self.outcomes: dict[str, Outcome] = {}

    def watch(self, records: Iterable[Recorded]) -> Iterator[Recorded]:
        """Pass ``records`` on to the fold, noting what the chat's turns need first."""
        for rec in records:
            ev = rec.event
            if isinstance(ev, ConfigLoaded):
                self.config_dicts[ev.hash] = ev
            elif ev.chat == self.chat:
                self._note(rec)
            yield rec

    def _note(self, rec: Recorded) -> None:
        ev = rec.event
        if isinstance(ev, LlmRequested):
            self.turns.append(self._turn(rec, ev))
            self.session_of[ev.call_id] = ev.session_id
        elif isinstance(ev, LlmCompleted):
            self._completed(ev)
        elif isinstance(ev, LlmFailed) and ev.final:
            self._update(ev.call_id, error=ev.error)
        elif isinstance(ev, ReplyPlanned) and ev.call_id is not None and ev.purpose == "reply":
            self._update(ev.call_id, reply=ev.text)

    def _completed(self, ev: LlmCompleted) -> None:
        # Mirrors projections.sessions: the answer joins the context only if the
        # call is still pending in a session that still exists.
        state = self.states.sessions
        call = state.pending.get(ev.call_id)
        if call is not None and call.session_id in state.sessions:
            self.session_calls.setdefault(call.session_id, []).append(ev.call_id)
        self._update(
            ev.call_id,
            content=ev.content,
            citations=ev.citations,
            usage=ev.usage,
            latency_ms=ev.latency_ms,
        )

    def _update(self, call_id: str, **fields: object) -> None:
        old = self.outcomes.get(call_id, Outcome())
        self.outcomes[call_id] = msgspec.structs.replace(old, **fields)

    def _turn(self, rec: Recorded, ev: LlmRequested) -> Turn:
        inputs: Inputs | None = None
        try:
            inputs = self._inputs(ev)
            problem = ""
        except _Gone as gone:
            problem = str(gone)
        return Turn(
            index=len(self.turns) + 1,
            seq=rec.seq,
            ts=rec.ts,
            call_id=ev.call_id,
            session_id=ev.session_id,
            config_hash=ev.config_hash,
            recorded=Request(model=ev.model, params=ev.params, messages=ev.messages),
            inputs=inputs,
            problem=problem,
        )

    def _inputs(self, ev: LlmRequested) -> Inputs:
        config = self._config(ev.config_hash)
        queued = self.states.queue.chats.get(self.chat, {})
        missing = [m for m in ev.trigger_ids if m not in queued]
        if missing or not ev.trigger_ids:
            raise _Gone(f"trigger messages not in the queue: {', '.join(missing) or 'none given'}")
        items = [queued[m] for m in ev.trigger_ids]
        first = items[0]
        entity = entity_for(config, self.chat, first.sender_alt, first.is_group)
        if entity is None:
            raise _Gone(f"config {ev.config_hash[:12]} does not monitor {self.chat}")
        session = self.states.sessions.sessions.get(ev.session_id)
        if session is None:
            raise _Gone(f"session {ev.session_id} is not in the log")
        context = sessions.context(session)
        answers = sum(1 for t in context if t.role == "assistant")
        calls = self.session_calls.get(ev.session_id, [])
        return Inputs(
            config=config,
            entity=entity,
            context=context,
            context_calls=calls[len(calls) - answers :] if answers else [],
            text=user_text(items, config.limits.max_input_chars),
        )

    def _config(self, digest: str) -> AppConfig:
        known = self.configs.get(digest)
        if known is None:
            loaded = self.config_dicts.get(digest)
            if loaded is None:
                known = f"config {digest[:12]} is not in the log"
            else:
                try:
                    known = config_from_dict(loaded.config, source=f"config {digest[:12]}")
                except ConfigError as exc:
                    known = str(exc)
            self.configs[digest] = known
        if isinstance(known, str):
            raise _Gone(known)
        return known

    def finish(self) -> list[Turn]:
        return [
            msgspec.structs.replace(t, outcome=self.outcomes.get(t.call_id, Outcome()))
            for t in self.turns
        ]


class _Gone(Exception):
    """An input of a turn is no longer in the log (compacted, or never recorded)."""
