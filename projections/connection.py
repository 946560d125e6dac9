"""The connection to WhatsApp, as the transport last reported it (``TransportStatus``).

It drives behaviour, so it is a projection of its own rather than a line of
the statistics: the sender sends only while the connection is up, the
check-in says what it is, an undelivered reply is owed as an alert only
after the connection was up long enough, a restriction's hold ends with a
reconnect, the console's health check and ``stats`` show it.

The state is the newest report left: a compaction that removes it leaves no
report (``state`` None, unknown), as a fold of what is left would find when
every report went (a connection up for longer than the retention).
"""

from __future__ import annotations

import msgspec

from events.model import Compacted, Recorded, TransportStatus
from projections.base import Handlers, Origin, Projection, origin, removal


class State(msgspec.Struct, kw_only=True):
    state: str | None = None  # the newest report's state; None: no report left
    detail: str = ""
    since: Origin | None = None  # the report that said so: since when up (or down)


def _status(state: State, rec: Recorded, ev: TransportStatus) -> None:
    state.state = ev.state
    state.detail = ev.detail
    state.since = origin(rec)


def _compacted(state: State, rec: Recorded, ev: Compacted) -> None:
    gone = removal(ev)
    if gone is not None and state.since is not None and gone.gone(*state.since):
        state.state, state.detail, state.since = None, "", None


def usable(state: State) -> bool:
    """Whether a send may be tried: the connection is up, or no report is left (a
    connection up for longer than the retention: the transport itself says then)."""
    return state.state in ("connected", None)


def connected_at(state: State) -> int | None:
    """The seq of the newest report if it says the connection is up."""
    since = state.since
    return since[0] if state.state == "connected" and since is not None else None


def up_since(state: State) -> float | None:
    """Since when the connection is up, by its newest report; None while it is not.

    No report at all (a rotation removed them): up, as far as anyone knows.
    """
    if state.state is None:
        return 0.0
    if state.state != "connected" or state.since is None:
        return None
    return state.since[1]


_HANDLERS: Handlers[State] = {TransportStatus: _status, Compacted: _compacted}
PROJECTION = Projection.of("connection", State, _HANDLERS)
apply = PROJECTION.apply
