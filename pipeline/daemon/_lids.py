"""Which monitored chat a LID belongs to, from what the log has learned.

WhatsApp addresses most contacts by LID and usually sends the phone number
along (``sender_alt``, or ``chat_alt`` for the owner's own messages), but not
always (whatsmeow #1014): then the LID alone must name the chat. An earlier
message may have tied that LID to a monitored chat (the addresses and aliases
projections keep those ties), and that is enough. When nothing has, and some
monitored person's LID is still unknown, the message may be theirs: intake
records that it came (``unresolved_lid``, without content) so the owner can
add the LID to app.json. When every monitored person's LID is known, an
unknown LID is nobody's we watch, and nothing of it is kept.
"""

from __future__ import annotations

from events.model import MessageReceived
from pipeline.config import AppConfig, GroupEntity, SelfEntity
from projections import addresses, aliases
from projections.fold import States

LID_SERVER = "lid"
UNRESOLVED = "unresolved_lid"  # the MessageSkipped reason


def learned(view: States, jid: str) -> list[str]:
    """The other ids the log has tied ``jid`` to: the chat it was filed under, and the
    person's other forms."""
    found = [addresses.chat_of(view.addresses, jid), *sorted(aliases.forms(view.aliases, jid))]
    return [f for f in dict.fromkeys(found) if f and f != jid]


def unnamed_lid(ev: MessageReceived) -> bool:
    """A direct message by LID that came without the phone number."""
    alt = ev.chat_alt or (None if ev.from_me else ev.sender_alt)
    return not ev.is_group and _server(ev.chat) == LID_SERVER and alt is None


def some_lid_unknown(app: AppConfig, view: States) -> bool:
    """Whether a monitored person (or the owner) has no LID the log knows of yet."""
    for entity in app.monitored_entities:
        if isinstance(entity, GroupEntity):
            continue
        if isinstance(entity, SelfEntity):
            if view.identity.me_lid is None:
                return True
            continue
        jid = app.entity_jid(entity)
        if _server(jid) != LID_SERVER and not _has_lid(view, jid):
            return True
    return False


def _has_lid(view: States, jid: str) -> bool:
    if any(_server(form) == LID_SERVER for form in aliases.forms(view.aliases, jid)):
        return True
    return any(
        _server(other) == LID_SERVER and chat == jid
        for other, chat in view.addresses.canonical.items()
    )


def _server(jid: str) -> str:
    return jid.rpartition("@")[2]
