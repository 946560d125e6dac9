"""The bot's sent messages and what WhatsApp reported about each: sent is not delivered.

Every ``ReplySent`` is a message the bot put on WhatsApp's server, by its
``wa_id``; ``ReplyDelivered`` facts say it reached a phone (``delivered``),
was read or played. Receipts are recorded only for messages found here (the
daemon drops every other receipt unseen), so this is also how a receipt
finds the reply it concerns.

Every message the log still holds is kept (retention bounds them), so each
is small: no receipts of its own (``reported`` holds those of the few that
have any), its chat interned, and not tracked by the garbage collector.

``waiting`` holds the messages no phone has confirmed yet, oldest send
first: what the ``undelivered`` alert looks at (``late``). A transport that
never reports receipts (a stdio script without ``receipt`` lines) must not
make every reply look lost, so a message is only watched once the log holds
a receipt recorded before it fell due. Until then nothing reads ``waiting``
and it stays empty (it would be every send: see ``unconfirmed``); the first
receipt fills it.

A ``Compacted`` drops the messages whose ``ReplySent`` went (their receipts
with them) and the receipts that went.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import NamedTuple, get_args

import msgspec

from events.model import Compacted, ReceiptState, Recorded, ReplyDelivered, ReplySent
from projections.base import Handlers, Projection, removal

# The states in the order they happen: a later one implies the earlier ones.
ORDER: tuple[ReceiptState, ...] = get_args(ReceiptState)
# What counts as having reached the recipient's phone.
ARRIVED = frozenset(ORDER[ORDER.index("delivered") :])


class Receipt(msgspec.Struct, kw_only=True, gc=False):
    seq: int  # the ReplyDelivered recording it
    ts: float
    at: float  # when WhatsApp says it happened


class Sent(msgspec.Struct, kw_only=True, gc=False, array_like=True):
    chat: str
    reply_id: str
    seq: int  # the ReplySent
    ts: float


class State(msgspec.Struct, kw_only=True):
    sent: dict[str, Sent] = {}  # wa_id -> the message, in order of sending
    # wa_id -> state -> its newest report, for the messages in ``sent`` that have any.
    reported: dict[str, dict[str, Receipt]] = {}
    # wa_ids no phone confirmed yet, in order of sending (while ``receipts``; else empty).
    waiting: dict[str, None] = {}
    receipts: int = 0  # receipts held in ``reported``: none, and no message is watched


class Late(NamedTuple):
    """Messages no phone confirmed in time: the oldest, and how many there are."""

    oldest: Sent
    number: int


def _sent(state: State, rec: Recorded, ev: ReplySent) -> None:
    if not ev.wa_id:
        return
    # A message sent again under its id (after a crash) starts afresh, at the end.
    state.sent.pop(ev.wa_id, None)
    before = state.reported.pop(ev.wa_id, None)
    if before is not None:
        state.receipts -= len(before)
    state.waiting.pop(ev.wa_id, None)
    # Interned: a chat's many sends share one string.
    chat = sys.intern(ev.chat)
    state.sent[ev.wa_id] = Sent(chat=chat, reply_id=ev.reply_id, seq=rec.seq, ts=rec.ts)
    if state.receipts:
        state.waiting[ev.wa_id] = None
    else:
        state.waiting.clear()  # its receipts were the last: no message is watched


def _delivered(state: State, rec: Recorded, ev: ReplyDelivered) -> None:
    sent = state.sent.get(ev.wa_id)
    if sent is None or sent.chat != ev.chat:
        return
    receipts = state.reported.get(ev.wa_id)
    if receipts is None:
        receipts = state.reported[ev.wa_id] = {}
    if ev.state not in receipts:
        if not state.receipts:  # the first: from now on the messages are watched
            state.waiting = dict.fromkeys(state.sent)
        state.receipts += 1
    receipts[ev.state] = Receipt(seq=rec.seq, ts=rec.ts, at=ev.at)
    if ev.state in ARRIVED:
        state.waiting.pop(ev.wa_id, None)


def _compacted(state: State, rec: Recorded, ev: Compacted) -> None:
    gone = removal(ev)
    if gone is None:
        return
    dropped = []
    for wa_id, sent in state.sent.items():
        # ``sent`` is in log order (a send again goes to the end), so nothing from
        # ``before`` on went: a daily rotation looks at one day, not every send kept.
        if sent.seq >= gone.before:
            break
        if gone.gone(sent.seq, sent.ts, sent.chat):
            dropped.append(wa_id)
    for wa_id in dropped:
        del state.sent[wa_id]
    receipts_went = False
    for wa_id, receipts in list(state.reported.items()):
        kept = state.sent.get(wa_id)
        for name, receipt in list(receipts.items()):
            # A message's receipts go with it, whatever their own seq says.
            if kept is None or gone.gone(receipt.seq, receipt.ts, kept.chat):
                del receipts[name]
                receipts_went = True
        if not receipts:
            del state.reported[wa_id]
    state.receipts = sum(len(receipts) for receipts in state.reported.values())
    if not state.receipts:
        state.waiting = {}
    elif receipts_went:  # a kept message may have lost the receipt that confirmed it
        state.waiting = dict.fromkeys(unconfirmed(state))
    else:
        for wa_id in dropped:
            state.waiting.pop(wa_id, None)


_NONE: Mapping[str, Receipt] = {}


def unconfirmed(state: State) -> list[str]:
    """The messages no phone confirmed yet, oldest send first (watched or not)."""
    if not state.receipts:
        return list(state.sent)  # no receipt at all: none arrived
    return [w for w in state.sent if not arrived(state, w)]


def receipts_of(state: State, wa_id: str) -> Mapping[str, Receipt]:
    """What WhatsApp reported about a sent message: state -> its newest report."""
    return state.reported.get(wa_id, _NONE)


def arrived(state: State, wa_id: str) -> bool:
    """Whether a phone confirmed the message (delivered, read or played)."""
    return not ARRIVED.isdisjoint(receipts_of(state, wa_id))


def furthest(state: State, wa_id: str) -> ReceiptState:
    """The furthest state the message reached; never less than ``server`` (it was sent)."""
    receipts = receipts_of(state, wa_id)
    return max((s for s in ORDER if s in receipts), key=ORDER.index, default="server")


def find(state: State, wa_id: str) -> Sent | None:
    """The sent message a receipt names, if the bot sent it."""
    return state.sent.get(wa_id)


def late(state: State, now: float, limit: float, *, after: float, skip: str) -> Late | None:
    """Messages sent after ``after``, not to ``skip``, that no phone confirmed within
    ``limit`` seconds, counted only once receipts were reported (see the docstring)."""
    if not state.receipts:
        return None  # the transport never reported one: nothing is watched
    found: list[Sent] = []
    for wa_id in state.waiting:
        sent = state.sent[wa_id]
        if sent.ts + limit > now:
            break  # the rest were sent later still
        if sent.ts > after and sent.chat != skip:
            found.append(sent)
    if not found:
        return None
    first = _first_receipt(state)
    watched = [s for s in found if first is not None and first <= s.ts + limit]
    return Late(watched[0], len(watched)) if watched else None


def _first_receipt(state: State) -> float | None:
    """When the oldest receipt still in the log was recorded."""
    times = [r.ts for receipts in state.reported.values() for r in receipts.values()]
    return min(times, default=None)


_HANDLERS: Handlers[State] = {
    ReplySent: _sent,
    ReplyDelivered: _delivered,
    Compacted: _compacted,
}
PROJECTION = Projection.of("deliveries", State, _HANDLERS)
apply = PROJECTION.apply
