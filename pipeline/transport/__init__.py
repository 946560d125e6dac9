"""How messages reach WhatsApp (or a stand-in) and come back.

Every transport implements ``Transport``: it normalises what it receives into
``Inbound`` messages, reports its connection state, and sends plain text or voice notes.
``SecretsFile`` keeps the message secrets edits need across restarts
(``forget_secrets`` is forget's part of it). ``StdioTransport`` speaks JSON
lines (docs/stdio.md), ``MemoryTransport`` is the in-process twin for
tests. The WhatsApp transport lives in
``pipeline.transport.neonize`` and is imported only when chosen: importing it
loads neonize's Go library, which prints to stdout.
"""

from pipeline.transport._base import (
    RESTRICTED_CODES,
    Deliver,
    Fact,
    Inbound,
    Outgoing,
    SendReceipt,
    StatusSink,
    Transport,
    TransportError,
    Voice,
    received_message,
)
from pipeline.transport._memory import MemoryTransport, SentMessage
from pipeline.transport._secrets_file import SecretsFile, forget_secrets
from pipeline.transport._stdio import StdioTransport

__all__ = [
    "RESTRICTED_CODES",
    "Deliver",
    "Fact",
    "Inbound",
    "MemoryTransport",
    "Outgoing",
    "SecretsFile",
    "SendReceipt",
    "SentMessage",
    "StatusSink",
    "StdioTransport",
    "Transport",
    "TransportError",
    "Voice",
    "forget_secrets",
    "received_message",
]
