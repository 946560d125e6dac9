"""One encoder and one decoder for every event row (tagged-union msgspec JSON)."""

from __future__ import annotations

from typing import Any

import msgspec

from events.model import AnyEvent, Event, Recorded

US = 1_000_000  # ts is stored in integer microseconds
Row = tuple[Any, ...]

_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[AnyEvent] = msgspec.json.Decoder(AnyEvent)


class CorruptEvent(ValueError):
    """A stored body that does not decode as any known event."""


def encode(event: Event) -> str:
    """The body column: compact JSON text, so SQLite's JSON functions read it."""
    return _encoder.encode(event).decode()


def decode(body: str | bytes) -> AnyEvent:
    try:
        return _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise CorruptEvent(f"undecodable event body: {exc}") from exc


def type_name(event: Event) -> str:
    """The ``type`` column value: the struct's tag, which is its class name."""
    return type(event).__name__


def record(row: Row) -> Recorded:
    """An events row (seq, ts in microseconds, key, body) as the event it holds."""
    seq, ts_us, key, body = row
    try:
        event = decode(body)
    except CorruptEvent as exc:
        raise CorruptEvent(f"event {seq}: {exc}") from None
    return Recorded(int(seq), int(ts_us) / US, event, key)
