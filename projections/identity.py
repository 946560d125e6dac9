"""Who the owner is on WhatsApp: the phone JID and the LID the connection reported.

The configured ``whatsapp.phone_number`` is one form; once connected, WhatsApp
names the owner by phone JID and by LID (``TransportStatus.me_pn``/``me_lid``),
and the owner's own messages, the note-to-self chat and mentions of the owner
may use either. Ids once learned are kept (they do not change for an account)
until a compaction removes the event that reported them.
"""

from __future__ import annotations

import msgspec

from events.model import Compacted, Recorded, TransportStatus
from projections.base import Handlers, Origin, Projection, origin, removal


class State(msgspec.Struct, kw_only=True):
    me_pn: str | None = None
    me_lid: str | None = None
    # Where each came from: the latest TransportStatus that reported it.
    pn_from: Origin | None = None
    lid_from: Origin | None = None


def _status(state: State, rec: Recorded, ev: TransportStatus) -> None:
    if ev.me_pn:
        state.me_pn = ev.me_pn
        state.pn_from = origin(rec)
    if ev.me_lid:
        state.me_lid = ev.me_lid
        state.lid_from = origin(rec)


def _compacted(state: State, rec: Recorded, ev: Compacted) -> None:
    gone = removal(ev)
    if gone is None:
        return
    if state.pn_from is not None and gone.gone(*state.pn_from):
        state.me_pn = state.pn_from = None
    if state.lid_from is not None and gone.gone(*state.lid_from):
        state.me_lid = state.lid_from = None


def owner_forms(state: State, configured: str) -> frozenset[str]:
    """Every id of the owner: the configured phone JID plus what WhatsApp reported."""
    return frozenset(f for f in (configured, state.me_pn, state.me_lid) if f)


_HANDLERS: Handlers[State] = {TransportStatus: _status, Compacted: _compacted}
PROJECTION = Projection.of("identity", State, _HANDLERS)
apply = PROJECTION.apply
