"""WhatsApp's receipts (neonize's ``ReceiptEv``) as ``ReplyDelivered`` facts.

whatsmeow reports receipts for every message of the account, the owner's
own from the phone included: the daemon keeps those of the bot's sends. Only
what the recipient's side reports counts: ``DELIVERED`` (a phone has it),
``READ``, ``PLAYED`` (a voice note or view-once opened). The others say
nothing about the recipient: ``SENDER`` (the owner's other devices got their
copy), ``READ_SELF`` (the owner read something elsewhere), ``RETRY`` (a device
could not decrypt it; whatsmeow sends it again), ``SERVER_ERROR`` (which
neonize 0.5.2 also sends for whatsmeow's ``played-self``), ``INACTIVE``,
``PEER_MSG``, ``HISTORY_SYNC``. The server's acknowledgement is the send
itself (``ReplySent``). ``Timestamp`` is unix seconds (neonize encodes
``time.Unix()``), unlike messages' milliseconds.
"""

from __future__ import annotations

from typing import Any

from neonize.proto.Neonize_pb2 import Receipt

from events.jid import InvalidJid
from events.model import ReceiptState, ReplyDelivered
from pipeline.transport.neonize._convert import jid

_STATES: dict[int, ReceiptState] = {
    Receipt.DELIVERED: "delivered",
    Receipt.READ: "read",
    Receipt.PLAYED: "played",
}


def receipts(ev: Any) -> list[ReplyDelivered]:
    """One fact per message id the receipt names; none for a receipt that says nothing
    about the recipient. Raises ``InvalidJid`` for a chat it cannot name."""
    state = _STATES.get(ev.Type)
    if state is None:
        return []
    chat = jid(ev.MessageSource.Chat)
    if chat is None:
        raise InvalidJid("receipt without a chat")
    at = float(ev.Timestamp)
    ids = dict.fromkeys(str(i) for i in ev.MessageIDs)
    return [ReplyDelivered(chat=chat, reply_id="", wa_id=i, state=state, at=at) for i in ids]
