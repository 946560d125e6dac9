"""Per (chat, user) the live conversation: its turns, activity times and id.

Expiry is not folded in: it depends on the clock and the configured mode, so
callers ask ``live(..., now, mode, ...)`` and start a new session when it is None.

A ``Compacted`` ends the sessions whose ``SessionStarted`` went (with their
calls in flight) and drops the calls whose request went: the chat starts
afresh, as a fold of what is left would have it. A surviving session keeps
its turns (a rotation or a forget removes a session's events together with
its start).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import msgspec

from events.model import (
    ChatTurn,
    Compacted,
    ConfigLoaded,
    LlmCompleted,
    LlmFailed,
    LlmRequested,
    MessageRevoked,
    Recorded,
    SessionStarted,
)
from projections.base import Handlers, Origin, Projection, dispatcher, origin, removal

DEFAULT_MAX_MESSAGES = 10
Reason = Literal["new", "expired", "config_changed", "reset"]


class Utterance(msgspec.Struct, frozen=True, gc=False):
    """One side of an exchange in a session's context."""

    role: Literal["user", "assistant"]
    content: str
    at: float
    msg_ids: tuple[str, ...] = ()  # the messages a user utterance is made of


class Session(msgspec.Struct, kw_only=True, gc=False):
    session_id: str
    chat: str
    user: str
    started_at: float
    last_activity: float
    reason: Reason
    turns: list[Utterance] = []
    system: str = ""  # the system text of the session's latest request
    seq: int = 0  # of its SessionStarted


class Call(msgspec.Struct, frozen=True, gc=False):
    """An LLM call in flight: the session it belongs to and its user turn."""

    session_id: str
    text: str
    msg_ids: tuple[str, ...] = ()
    origin: Origin = (0, 0.0, "")  # of its LlmRequested


class State(msgspec.Struct, kw_only=True):
    sessions: dict[str, Session] = {}
    current: dict[str, str] = {}  # f"{chat}|{user}" -> session_id
    pending: dict[str, Call] = {}  # call_id -> call
    max_messages: int = DEFAULT_MAX_MESSAGES


def _key(chat: str, user: str) -> str:
    return f"{chat}|{user}"


def _config(state: State, rec: Recorded, ev: ConfigLoaded) -> None:
    memory = ev.config.get("session_memory") or {}
    state.max_messages = int(memory.get("max_messages", DEFAULT_MAX_MESSAGES))


def _started(state: State, rec: Recorded, ev: SessionStarted) -> None:
    key = _key(ev.chat, ev.user)
    old = state.current.get(key)
    if old is not None and old != ev.session_id:
        # Only the current session of a key is ever used again: forget the old one.
        state.sessions.pop(old, None)
        for call_id in [c for c, call in state.pending.items() if call.session_id == old]:
            del state.pending[call_id]
    state.current[key] = ev.session_id
    state.sessions[ev.session_id] = Session(
        session_id=ev.session_id,
        chat=ev.chat,
        user=ev.user,
        started_at=rec.ts,
        last_activity=rec.ts,
        reason=ev.reason,
        seq=rec.seq,
    )


def _requested(state: State, rec: Recorded, ev: LlmRequested) -> None:
    session = state.sessions.get(ev.session_id)
    if session is None:
        return
    text = ev.messages[-1].content if ev.messages else ""
    state.pending[ev.call_id] = Call(ev.session_id, text, tuple(ev.trigger_ids), origin(rec))
    session.last_activity = rec.ts
    if ev.messages and ev.messages[0].role == "system":
        session.system = ev.messages[0].content


def _completed(state: State, rec: Recorded, ev: LlmCompleted) -> None:
    call = state.pending.pop(ev.call_id, None)
    if call is None:
        return
    session = state.sessions.get(call.session_id)
    if session is None:
        return
    turns = session.turns
    turns.append(Utterance("user", call.text, rec.ts, call.msg_ids))
    turns.append(Utterance("assistant", ev.content, rec.ts))
    size = len(turns)
    if size > state.max_messages:
        # Keep at most max_messages; Perplexity needs the context to open with a user turn.
        cut = size - state.max_messages
        while cut < size and turns[cut].role != "user":
            cut += 1
        del turns[:cut]
    session.last_activity = rec.ts


def _failed(state: State, rec: Recorded, ev: LlmFailed) -> None:
    if ev.final:
        state.pending.pop(ev.call_id, None)


def _revoked(state: State, rec: Recorded, ev: MessageRevoked) -> None:
    """A deleted message leaves the context, with the answer it got or will get."""
    for call_id in [c for c, call in state.pending.items() if ev.msg_id in call.msg_ids]:
        del state.pending[call_id]
    for session in state.sessions.values():
        if session.chat != ev.chat:
            continue
        turns = session.turns
        for i, turn in enumerate(turns):
            if turn.role == "user" and ev.msg_id in turn.msg_ids:
                end = i + 2 if i + 1 < len(turns) and turns[i + 1].role == "assistant" else i + 1
                del turns[i:end]
                return


def _compacted(state: State, rec: Recorded, ev: Compacted) -> None:
    gone = removal(ev)
    if gone is None:
        return
    ended = {
        session_id
        for session_id, session in state.sessions.items()
        if gone.gone(session.seq, session.started_at, session.chat)
    }
    for session_id in ended:
        del state.sessions[session_id]
    state.current = {key: sid for key, sid in state.current.items() if sid not in ended}
    state.pending = {
        call_id: call
        for call_id, call in state.pending.items()
        if call.session_id not in ended and not gone.gone(*call.origin)
    }


def current(state: State, chat: str, users: Iterable[str]) -> Session | None:
    """The newest session of ``chat`` under the first alias form of the user that has one."""
    for user in users:
        session_id = state.current.get(_key(chat, user))
        if session_id is not None:
            return state.sessions.get(session_id)
    return None


def expires_at(session: Session, mode: str, ttl_minutes: float, tz: str) -> float | None:
    """When ``session`` ends under the configured mode; None for ``never``."""
    if mode == "idle":
        return session.last_activity + ttl_minutes * 60
    if mode == "fixed":
        return session.started_at + ttl_minutes * 60
    if mode == "daily":
        zone = ZoneInfo(tz)
        day = datetime.fromtimestamp(session.started_at, zone).date() + timedelta(days=1)
        # A midnight skipped by DST resolves (fold=0) to the first instant of that day.
        return datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()
    if mode == "never":
        return None
    raise ValueError(f"unknown session mode {mode!r} (idle, fixed, daily or never)")


def live(  # noqa: PLR0917 - the agent's call shape: clock and session config last
    state: State,
    chat: str,
    users: Iterable[str],
    now: float,
    mode: str,
    ttl_minutes: float,
    tz: str,
) -> Session | None:
    """The current session if it has not expired at ``now`` (expiry instant included)."""
    session = current(state, chat, users)
    if session is None:
        return None
    end = expires_at(session, mode, ttl_minutes, tz)
    return session if end is None or now < end else None


def context(session: Session) -> list[ChatTurn]:
    """The session's turns as LLM messages, oldest first."""
    return [ChatTurn(t.role, t.content) for t in session.turns]


_HANDLERS: Handlers[State] = {
    ConfigLoaded: _config,
    SessionStarted: _started,
    LlmRequested: _requested,
    LlmCompleted: _completed,
    LlmFailed: _failed,
    MessageRevoked: _revoked,
    Compacted: _compacted,
}
apply = dispatcher(_HANDLERS)
PROJECTION = Projection("sessions", State, apply, _HANDLERS)
