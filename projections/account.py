"""The owner's account as WhatsApp treats it: a restriction in force, and the pace of sends.

A restriction episode begins with an ``AccountRestricted`` (a send met error
463 "reach-out timelock" or 479, or the transport said so) and ends with an
``AccountRestricted`` that is not ``active`` (a message to someone else went
through again). Every restriction of the episode is kept, the newest last: it
says what WhatsApp said (code, ``until``). Whether sends to others are held
*now* also depends on the clock and on the connection (``hold_until``): the
hold ends at ``until`` when WhatsApp said when, else ``UNKNOWN_END_HOLD``
after the newest restriction, or earlier when the connection comes back (a
``connected`` status recorded after it). The episode goes on after the hold
until a message to someone else goes through.

``sends`` are the times of the most recent ``ReplySent`` events: those within
``SEND_WINDOW`` of the newest, at most ``SENDS_KEPT``, so a restarted bot
counts what it sent just before (``whatsapp.max_sends_per_minute``).

A ``Compacted`` drops the restrictions and sends whose events went. What is
left of the sends is then the newest of those a fold of what is left keeps
(that fold may reach further back, when the newest send went).
"""

from __future__ import annotations

import msgspec

from events.model import AccountRestricted, Compacted, Recorded, ReplySent
from events.units import HOUR
from projections.base import Handlers, Origin, Projection, origin, removal

SEND_WINDOW = 60.0  # seconds: the pace counts the sends of any such window
SENDS_KEPT = 1000  # the highest whatsapp.max_sends_per_minute allowed
# A restriction that came with no end (a send refused with 463) holds this long
# at most; then one reply tries again.
UNKNOWN_END_HOLD = HOUR


class Strike(msgspec.Struct, frozen=True, kw_only=True):
    """One ``AccountRestricted`` of the open episode."""

    seq: int
    ts: float
    code: int | None = None
    until: float | None = None
    detail: str = ""


class State(msgspec.Struct, kw_only=True):
    strikes: list[Strike] = []  # the open episode's restrictions, oldest first
    sends: list[Origin] = []  # the recent sends, oldest first


def _restricted(state: State, rec: Recorded, ev: AccountRestricted) -> None:
    if not ev.active:
        state.strikes = []
        return
    strike = Strike(seq=rec.seq, ts=rec.ts, code=ev.code, until=ev.until, detail=ev.detail)
    state.strikes.append(strike)


def _sent(state: State, rec: Recorded, ev: ReplySent) -> None:
    sends = state.sends
    sends.append(origin(rec))
    oldest = rec.ts - SEND_WINDOW
    if sends[0][1] > oldest and len(sends) <= SENDS_KEPT:
        return  # the common case: nothing to drop, no loop
    cut = 0
    while cut < len(sends) and (sends[cut][1] <= oldest or len(sends) - cut > SENDS_KEPT):
        cut += 1
    if cut:
        del sends[:cut]


def _compacted(state: State, rec: Recorded, ev: Compacted) -> None:
    gone = removal(ev)
    if gone is None:
        return
    state.strikes = [s for s in state.strikes if not gone.gone(s.seq, s.ts, "")]
    state.sends = [s for s in state.sends if not gone.gone(*s)]


def newest(state: State) -> Strike | None:
    """The newest restriction of the open episode; None: the account is not restricted."""
    return state.strikes[-1] if state.strikes else None


def hold_until(state: State, connected_at: int | None, now: float) -> float | None:
    """When the hold on sends to others ends; None: nothing is held now.

    ``connected_at``: the seq of the connection's newest status if it says
    ``connected`` (None otherwise; ``projections.connection`` knows it).
    """
    strike = newest(state)
    if strike is None:
        return None
    if connected_at is not None and connected_at > strike.seq:
        return None  # connected again since: the hold is lifted (the episode goes on)
    end = strike.until if strike.until is not None else strike.ts + UNKNOWN_END_HOLD
    return end if now < end else None


def restricted_between(state: State, start: float, end: float) -> bool:
    """Whether a restriction of the open episode held sends at some time from ``start``
    to ``end`` (each from when it came until its ``until``, else ``UNKNOWN_END_HOLD``)."""
    return any(
        s.ts <= end and (s.until if s.until is not None else s.ts + UNKNOWN_END_HOLD) > start
        for s in state.strikes
    )


def since(state: State) -> float | None:
    """When the open episode began."""
    return state.strikes[0].ts if state.strikes else None


def send_times(state: State) -> list[float]:
    """When the recent sends were recorded, oldest first."""
    return [ts for _, ts, _ in state.sends]


_HANDLERS: Handlers[State] = {
    AccountRestricted: _restricted,
    ReplySent: _sent,
    Compacted: _compacted,
}
PROJECTION = Projection.of("account", State, _HANDLERS)
apply = PROJECTION.apply
