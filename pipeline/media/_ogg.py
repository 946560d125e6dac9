"""What a voice note sent by the bot needs from its Ogg Opus file: duration and waveform.

WhatsApp shows a voice note's length from the message (``seconds``), not
from the file, and draws its bars from ``waveform``: both are read here from
the Ogg pages (RFC 3533, RFC 7845) without decoding any audio. The length is
the last granule position (48 kHz samples decoded so far) minus the
``OpusHead`` pre-skip; the bars are the packets' sizes, which Opus's variable
bitrate makes louder passages larger, in 64 steps of 0-100 as WhatsApp takes
them. A file that is not whole Ogg Opus raises ``NotOpus`` with one line
saying what is wrong.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

OGG_OPUS = "audio/ogg; codecs=opus"
_RATE = 48_000
_HEADER = struct.Struct("<4sBBqIIIB")  # capture, version, flags, granule, serial, seq, crc, n
_NO_GRANULE = -1  # a page on which no packet ends
_BARS = 64


class NotOpus(ValueError):
    """Bytes that are not a whole Ogg Opus stream."""


class OpusInfo(NamedTuple):
    seconds: float
    waveform: bytes  # 64 values 0-100


def opus_info(data: bytes) -> OpusInfo:
    """The duration and waveform of an Ogg Opus file; raises ``NotOpus``."""
    packets, granule = _packets(data)
    if not packets or not packets[0].startswith(b"OpusHead") or len(packets[0]) < 19:
        raise NotOpus("not Ogg Opus: the first packet is not an OpusHead header")
    pre_skip = struct.unpack_from("<H", packets[0], 10)[0]
    if granule is None or granule <= pre_skip:
        raise NotOpus("no audio: the Ogg stream ends before its first sample")
    return OpusInfo((granule - pre_skip) / _RATE, waveform([len(p) for p in packets[2:]]))


def whole_seconds(seconds: float) -> int:
    """The length WhatsApp shows: whole seconds, at least 1."""
    return max(1, round(seconds))


def waveform(sizes: list[int]) -> bytes:
    """``_BARS`` bars of 0-100: the mean packet size of each stretch, the largest 100."""
    if not sizes:
        return bytes(_BARS)
    means = []
    for bar in range(_BARS):
        start = bar * len(sizes) // _BARS
        stretch = sizes[start : max((bar + 1) * len(sizes) // _BARS, start + 1)]
        means.append(sum(stretch) / len(stretch))
    top = max(means) or 1.0
    return bytes(round(100 * m / top) for m in means)


def _packets(data: bytes) -> tuple[list[bytes], int | None]:
    """The first logical stream's packets, and the last granule position it gives."""
    packets: list[bytes] = []
    partial = b""
    granule: int | None = None
    serial: int | None = None
    at = 0
    while at < len(data):
        if len(data) - at < _HEADER.size:
            raise NotOpus(f"truncated Ogg page header at byte {at}")
        capture, version, _flags, position, page_serial, _seq, _crc, count = _HEADER.unpack_from(
            data, at
        )
        if capture != b"OggS" or version != 0:
            raise NotOpus(f"not an Ogg page at byte {at}")
        lacing = data[at + _HEADER.size : at + _HEADER.size + count]
        body = at + _HEADER.size + count
        end = body + sum(lacing)
        if len(lacing) < count or end > len(data):
            raise NotOpus(f"truncated Ogg page at byte {at}")
        if serial is None:
            serial = page_serial
        if page_serial == serial:
            partial = _split(data[body:end], lacing, partial, packets)
            if position != _NO_GRANULE:
                granule = position
        at = end
    if serial is None:
        raise NotOpus("empty file")
    return packets, granule


def _split(body: bytes, lacing: bytes, partial: bytes, packets: list[bytes]) -> bytes:
    """Append the packets that end on this page; returns the one that goes on to the next."""
    start = 0
    for value in lacing:
        partial += body[start : start + value]
        start += value
        if value < 255:
            packets.append(partial)
            partial = b""
    return partial
