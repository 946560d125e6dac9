"""The newest failures that cost a reply, so ``/status`` can name the last error.

Kept: a final ``LlmFailed`` (a turn got no answer), a final ``ReplyFailed`` (a
message was not sent) and a final ``TranscriptionFailed`` (a voice note went
unheard), the newest ``KEEP`` of them, each with where it came from. Errors
are one line and never hold a key (the events' contract); one may quote a
chat's words, so the chat travels with it.

A ``Compacted`` drops the failures whose event went. A fold of what is left
may find older ones the window no longer holds; so this is the one state
whose absorbed form may name fewer failures than a refold (never one that went).
"""

from __future__ import annotations

import msgspec

from events.model import Compacted, LlmFailed, Recorded, ReplyFailed, TranscriptionFailed
from projections.base import Handlers, Projection, removal

KEEP = 5


class Failure(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    seq: int
    ts: float
    chat: str
    what: str  # "LLM", "sending", "transcription"
    error: str


class State(msgspec.Struct, kw_only=True):
    newest: list[Failure] = []  # oldest first, at most KEEP


def _keep(state: State, rec: Recorded, what: str, error: str) -> None:
    state.newest.append(Failure(seq=rec.seq, ts=rec.ts, chat=rec.chat, what=what, error=error))
    if len(state.newest) > KEEP:
        del state.newest[0]


def _llm(state: State, rec: Recorded, ev: LlmFailed) -> None:
    if ev.final:
        status = f"HTTP {ev.status}: " if ev.status is not None else ""
        _keep(state, rec, "LLM", status + ev.error)


def _send(state: State, rec: Recorded, ev: ReplyFailed) -> None:
    if ev.final:
        _keep(state, rec, "sending", ev.error)


def _transcription(state: State, rec: Recorded, ev: TranscriptionFailed) -> None:
    if ev.final:
        _keep(state, rec, "transcription", ev.error)


def _compacted(state: State, rec: Recorded, ev: Compacted) -> None:
    gone = removal(ev)
    if gone is not None:
        state.newest = [f for f in state.newest if not gone.gone(f.seq, f.ts, f.chat)]


def last(state: State) -> Failure | None:
    return state.newest[-1] if state.newest else None


_HANDLERS: Handlers[State] = {
    LlmFailed: _llm,
    ReplyFailed: _send,
    TranscriptionFailed: _transcription,
    Compacted: _compacted,
}
PROJECTION = Projection.of("failures", State, _HANDLERS)
apply = PROJECTION.apply
