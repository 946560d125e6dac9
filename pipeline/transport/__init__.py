"""How messages reach WhatsApp (or a stand-in) and come back."""

from pipeline.transport.base import (
    Deliver,
    Inbound,
    SendReceipt,
    StatusSink,
    Transport,
    TransportError,
    received_message,
)

__all__ = [
    "Deliver",
    "Inbound",
    "SendReceipt",
    "StatusSink",
    "Transport",
    "TransportError",
    "received_message",
]
