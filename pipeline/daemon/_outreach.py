"""What the sender may send now: the account's restriction and the global pace, as pure
functions of the projections, the sender's own bookkeeping and the clock.

**Restriction.** While WhatsApp restricts the account (``projections.account``),
nothing goes to anyone but the owner's own chat: replies owed to others are
*held*, neither sent nor failed, until the hold ends
(``projections.account.hold_until``). A held reply that goes stale meanwhile
is failed as stale, as it would be at the end. After the hold and until a
message to someone else goes through (which ends the episode), the account
is *probing*: one reply to someone else at a time, so a restriction still in
force costs one refused send, never a burst.

**Pace.** No more than ``whatsapp.max_sends_per_minute`` sends start in any
``WINDOW`` seconds, the owner's chat included; what is owed beyond that waits
in the order it was planned, across chats. A send counts from when it starts;
one admitted but not started yet counts as starting now.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from projections import account, connection
from projections.fold import States
from projections.outbox import Entry

WINDOW = account.SEND_WINDOW
UNKNOWN_END_HOLD = account.UNKNOWN_END_HOLD


def hold_until(view: States, now: float) -> float | None:
    """When the hold on sends to others ends; None: nothing is held now."""
    return account.hold_until(view.account, connection.connected_at(view.connection), now)


def probing(view: States) -> bool:
    """Whether a restriction episode is open: sends to others go one at a time."""
    return account.newest(view.account) is not None


def in_window(sent: Sequence[float], now: float, window: float = WINDOW) -> list[float]:
    """The send times within the window that ends at ``now``, oldest first."""
    return sorted(t for t in sent if t > now - window)


def still_in_window(sent: list[float], now: float, window: float = WINDOW) -> None:
    """``in_window`` in place, for send times kept oldest first: a cut, not a sort
    (the sender asks at every commit, with up to a minute of sends kept)."""
    del sent[: bisect.bisect_right(sent, now - window)]


def next_slot(
    sent: Sequence[float], reserved: int, now: float, limit: int, window: float = WINDOW
) -> float:
    """When the next send may start: ``now`` if one may, inf if only a send admitted
    earlier (``reserved``) leaving the window can make room."""
    if len(sent) + reserved < limit:
        return now  # room even if every send were recent
    recent = in_window(sent, now, window)
    over = len(recent) + reserved - limit + 1  # the oldest sends that must leave the window
    if over <= 0:
        return now
    return recent[over - 1] + window if over <= len(recent) else math.inf


@dataclass(frozen=True, slots=True)
class Gate:
    """What admission reads besides the owed replies."""

    now: float
    owner: str  # the owner's own chat: never held
    held_until: float | None  # sends to others wait until then; None: not held
    probing: bool  # one send to others at a time
    sent: Sequence[float]  # when the recent sends started
    reserved: int  # sends admitted earlier, not started yet
    limit: int  # whatsapp.max_sends_per_minute
    stale_at: Callable[[Entry], float]  # when an owed reply is too late to send (inf: never)


class Admission(NamedTuple):
    work: dict[str, list[Entry]]  # chat -> its owed replies to handle now, in order
    wake: float  # when to look again (inf: at the next commit or worker's end)


def admit(
    gate: Gate,
    owed: Sequence[Entry],
    busy: frozenset[str],
    retry_at: Mapping[str, float],
) -> Admission:
    """The owed replies (in plan order) to handle now, given the chats being sent to
    (``busy``) and the retry time of replies that failed (by ``reply_id``).

    A chat's replies go in order: one that must wait holds the chat's later ones.
    A stale reply needs no slot: it is failed, not sent.
    """
    work: dict[str, list[Entry]] = {}
    wake = math.inf
    reserved = gate.reserved
    probe_taken = gate.probing and any(chat != gate.owner for chat in busy)
    blocked = set(busy)
    for entry in sorted(owed, key=lambda e: e.seq):
        chat = entry.event.chat
        if chat in blocked:
            continue
        first = chat not in work
        due = retry_at.get(entry.event.reply_id, 0.0) if first else 0.0
        wait = _wait(gate, entry, due, chat == gate.owner, probe_taken, reserved)
        if wait is not None:
            blocked.add(chat)
            wake = min(wake, wait)
            continue
        work.setdefault(chat, []).append(entry)
        if gate.stale_at(entry) > gate.now:  # stale from its stale_at on: failed, not sent
            reserved += 1
            if chat != gate.owner and gate.probing:
                probe_taken = True
                blocked.add(chat)  # the probe goes alone; the rest wait for its outcome
    return Admission(work, wake)


def _wait(  # noqa: PLR0917 - one entry and what stands in its way
    gate: Gate, entry: Entry, due: float, to_owner: bool, probe_taken: bool, reserved: int
) -> float | None:
    """Until when ``entry`` must wait (inf: until something else ends); None: it may go."""
    if due > gate.now:
        return due
    stale = gate.stale_at(entry)
    if stale <= gate.now:
        return None
    if not to_owner and gate.held_until is not None:
        return min(gate.held_until, stale)
    if not to_owner and probe_taken:
        return math.inf  # the probe's worker wakes the sender as it ends
    slot = next_slot(gate.sent, reserved, gate.now, gate.limit)
    return None if slot <= gate.now else slot
