"""Each chat's tool loop in progress: the request of its latest round.

A turn whose model calls tools goes on in rounds, each an ``LlmRequested``
carrying the earlier rounds' calls and outputs (``rounds``). A restart between
rounds finds the turn's messages requested under the latest round's call, and
must ask that round again as recorded: composing the prompt anew would lose
the tool calls already made and have the model make them a second time. So
the request of a chat's latest round past the first is kept here until the
turn ends: an answer without tool calls, a final failure, a withheld reply or
a skip. One entry per chat at most, so the state is as small as the turns in
flight.

A ``Compacted`` drops an entry whose request went.
"""

from __future__ import annotations

import msgspec

from events.model import (
    Compacted,
    LlmCompleted,
    LlmFailed,
    LlmRequested,
    MessageSkipped,
    Recorded,
    ReplyWithheld,
)
from projections.base import Handlers, Projection, removal


class Round(msgspec.Struct, kw_only=True, gc=False):
    request: LlmRequested
    seq: int
    ts: float


class State(msgspec.Struct, kw_only=True):
    chats: dict[str, Round] = {}


def _requested(state: State, rec: Recorded, ev: LlmRequested) -> None:
    if ev.rounds:
        state.chats[ev.chat] = Round(request=ev, seq=rec.seq, ts=rec.ts)
    else:
        state.chats.pop(ev.chat, None)


def _ended(state: State, chat: str, call_id: str) -> None:
    found = state.chats.get(chat)
    if found is not None and found.request.call_id == call_id:
        del state.chats[chat]


def _completed(state: State, rec: Recorded, ev: LlmCompleted) -> None:
    if not ev.tool_calls:
        _ended(state, ev.chat, ev.call_id)


def _failed(state: State, rec: Recorded, ev: LlmFailed) -> None:
    if ev.final:
        _ended(state, ev.chat, ev.call_id)


def _withheld(state: State, rec: Recorded, ev: ReplyWithheld) -> None:
    _ended(state, ev.chat, ev.call_id)


def _skipped(state: State, rec: Recorded, ev: MessageSkipped) -> None:
    # An orphaned round too late to ask again (stale) or whose messages were deleted.
    found = state.chats.get(ev.chat)
    if found is not None and ev.msg_id in found.request.trigger_ids:
        del state.chats[ev.chat]


def _compacted(state: State, rec: Recorded, ev: Compacted) -> None:
    gone = removal(ev)
    if gone is None:
        return
    for chat, found in list(state.chats.items()):
        if gone.gone(found.seq, found.ts, chat):
            del state.chats[chat]


def resuming(state: State, chat: str, call_id: str | None) -> LlmRequested | None:
    """The recorded request of ``chat``'s round ``call_id``, when it is a later round."""
    found = state.chats.get(chat)
    return found.request if found is not None and found.request.call_id == call_id else None


_HANDLERS: Handlers[State] = {
    LlmRequested: _requested,
    LlmCompleted: _completed,
    LlmFailed: _failed,
    ReplyWithheld: _withheld,
    MessageSkipped: _skipped,
    Compacted: _compacted,
}
PROJECTION = Projection.of("loops", State, _HANDLERS)
apply = PROJECTION.apply
