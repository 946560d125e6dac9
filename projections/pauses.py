"""Chats the owner paused with ``/pause``: since when, and until when.

A pause is a fact of the log (``ChatPaused``), so it survives a restart. It
ends at ``/resume`` (``ChatResumed``) or by the clock at its ``until``: the
fold records only events, so whether a pause is in force is asked with the
time (``until``). A chat's newest pause is kept after it ends: a message that
arrived during it and is too old to answer once it ends was left unanswered
*because of the pause*, so it is skipped as ``paused``, not ``stale``. A
``/pause`` while the chat is paused changes when the pause ends, not when it
began.

A ``Compacted`` that removed a chat's newest ``ChatPaused`` drops its pause,
one that removed the ``ChatResumed`` puts it back in force, and one that
removed the first pauses it extended dates it from the oldest one left: as a
fold of what is left would (a rotation keeps a pause in force: ``kept``).
"""

from __future__ import annotations

import math

import msgspec

from events.model import ChatPaused, ChatResumed, Compacted, Recorded
from projections.base import Handlers, Projection, removal


class Pause(msgspec.Struct, kw_only=True, gc=False):
    since: float  # when the chat was paused (by the first of the pauses this one extends)
    until: float | None  # when it ends by itself; None: at /resume
    seq: int  # the newest ChatPaused's seq
    at: float  # and its ts
    # (seq, ts) of every ChatPaused this pause is made of, oldest first (``since`` is the
    # first one's ts): a compaction that removes the first ones dates it from the next.
    chain: list[tuple[int, float]] = []
    ended: float | None = None  # when /resume ended it
    resumed_seq: int | None = None  # that ChatResumed's seq


class State(msgspec.Struct, kw_only=True):
    chats: dict[str, Pause] = {}  # chat -> its newest pause (in force or ended)


def _paused(state: State, rec: Recorded, ev: ChatPaused) -> None:
    old = state.chats.get(ev.chat)
    going_on = old is not None and end(old) > rec.ts
    earlier = old.chain if old is not None and going_on else []
    chain = [*earlier, (rec.seq, rec.ts)]
    state.chats[ev.chat] = Pause(
        since=chain[0][1], until=ev.until, seq=rec.seq, at=rec.ts, chain=chain
    )


def _resumed(state: State, rec: Recorded, ev: ChatResumed) -> None:
    pause = state.chats.get(ev.chat)
    if pause is not None and end(pause) > rec.ts:
        pause.ended, pause.resumed_seq = rec.ts, rec.seq


def _compacted(state: State, rec: Recorded, ev: Compacted) -> None:
    gone = removal(ev)
    if gone is None:
        return
    for chat, pause in list(state.chats.items()):
        if gone.gone(pause.seq, pause.at, chat):
            del state.chats[chat]
            continue
        pause.chain = [(seq, ts) for seq, ts in pause.chain if not gone.gone(seq, ts, chat)]
        pause.since = pause.chain[0][1]  # the newest is still there
        if pause.resumed_seq is not None and gone.gone(pause.resumed_seq, pause.ended or 0, chat):
            pause.ended = pause.resumed_seq = None


def end(pause: Pause) -> float:
    """When ``pause`` ends or ended (inf: not before ``/resume``)."""
    if pause.ended is not None:
        return pause.ended
    return pause.until if pause.until is not None else math.inf


def until(state: State, chat: str, now: float) -> float | None:
    """When ``chat``'s pause in force ends (inf: at ``/resume``); None: not paused."""
    pause = state.chats.get(chat)
    if pause is None or end(pause) <= now:
        return None
    return end(pause)


def paused_chats(state: State, now: float) -> dict[str, float]:
    """Every chat paused now -> when its pause ends (inf: at ``/resume``)."""
    return {chat: end(p) for chat, p in state.chats.items() if end(p) > now}


def covered(state: State, chat: str, ts: float) -> bool:
    """Whether a message recorded at ``ts`` arrived during ``chat``'s newest pause."""
    pause = state.chats.get(chat)
    return pause is not None and pause.since <= ts < end(pause)


def kept(state: State, now: float) -> frozenset[int]:
    """The ``ChatPaused`` events a rotation must keep: the pauses still in force."""
    return frozenset(p.seq for p in state.chats.values() if end(p) > now)


_HANDLERS: Handlers[State] = {
    ChatPaused: _paused,
    ChatResumed: _resumed,
    Compacted: _compacted,
}
PROJECTION = Projection.of("pauses", State, _HANDLERS)
apply = PROJECTION.apply
