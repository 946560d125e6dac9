"""Writes tests/fixtures/speech.ogg: 1.5 s of real Ogg Opus, as a speech endpoint answers.

Run ``python -m tests.make_speech_fixture`` to regenerate it. It needs
libopus (``libopus.so.0``, through ctypes) and nothing else; the tests read
the committed file and need no libopus. The sound is a 440 Hz tone that
swells and fades, 48 kHz mono, in 20 ms frames; the pages follow RFC 7845
(``OpusHead`` with the encoder's pre-skip, ``OpusTags``, then audio pages
whose granule position counts 48 kHz samples, the last page flagged
end-of-stream).
"""

from __future__ import annotations

import ctypes
import math
import struct
import sys
from pathlib import Path

RATE = 48_000
FRAME = 960  # 20 ms
SECONDS = 1.5
FRAMES_PER_PAGE = 10
_APPLICATION_VOIP = 2048
_GET_LOOKAHEAD = 4027
TARGET = Path(__file__).parent / "fixtures" / "speech.ogg"


def _crc_table() -> list[int]:
    table = []
    for n in range(256):
        crc = n << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return table


_TABLE = _crc_table()


def ogg_crc(data: bytes) -> int:
    """Ogg's CRC-32 (polynomial 0x04C11DB7, not reflected, initial 0)."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _TABLE[((crc >> 24) & 0xFF) ^ byte]
    return crc


def page(packets: list[bytes], *, granule: int, serial: int, seq: int, flags: int) -> bytes:
    """One Ogg page holding whole ``packets`` (each under 255 * 255 bytes)."""
    lacing = bytearray()
    for packet in packets:
        lacing += b"\xff" * (len(packet) // 255) + bytes([len(packet) % 255])
    header = struct.pack("<4sBBqIIIB", b"OggS", 0, flags, granule, serial, seq, 0, len(lacing))
    body = bytes(header) + bytes(lacing) + b"".join(packets)
    crc = ogg_crc(body)
    return body[:22] + struct.pack("<I", crc) + body[26:]


def encode() -> bytes:
    opus = ctypes.CDLL("libopus.so.0")
    opus.opus_encoder_create.restype = ctypes.c_void_p
    error = ctypes.c_int()
    enc = opus.opus_encoder_create(RATE, 1, _APPLICATION_VOIP, ctypes.byref(error))
    if error.value != 0:
        raise SystemExit(f"opus_encoder_create failed: {error.value}")
    lookahead = ctypes.c_int32()
    opus.opus_encoder_ctl(ctypes.c_void_p(enc), _GET_LOOKAHEAD, ctypes.byref(lookahead))
    pre_skip = lookahead.value
    total = int(SECONDS * RATE)
    frames = math.ceil((total + pre_skip) / FRAME)
    out = ctypes.create_string_buffer(4000)
    packets = []
    for f in range(frames):
        pcm = (ctypes.c_int16 * FRAME)()
        for i in range(FRAME):
            n = f * FRAME + i
            swell = math.sin(math.pi * min(n, total) / total)
            pcm[i] = int(12_000 * swell * math.sin(2 * math.pi * 440 * n / RATE))
        size = opus.opus_encode(ctypes.c_void_p(enc), pcm, FRAME, out, len(out))
        if size < 0:
            raise SystemExit(f"opus_encode failed: {size}")
        packets.append(out.raw[:size])
    opus.opus_encoder_destroy(ctypes.c_void_p(enc))
    return ogg(packets, pre_skip, total)


def ogg(packets: list[bytes], pre_skip: int, total: int) -> bytes:
    serial = 0x5EEC4
    head = struct.pack("<8sBBHIhB", b"OpusHead", 1, 1, pre_skip, RATE, 0, 0)
    vendor = b"wabot tests"
    tags = b"OpusTags" + struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", 0)
    pages = [page([head], granule=0, serial=serial, seq=0, flags=2)]
    pages.append(page([tags], granule=0, serial=serial, seq=1, flags=0))
    seq = 2
    for start in range(0, len(packets), FRAMES_PER_PAGE):
        chunk = packets[start : start + FRAMES_PER_PAGE]
        last = start + FRAMES_PER_PAGE >= len(packets)
        # The last page's granule ends the stream: samples past it are padding.
        granule = pre_skip + total if last else (start + len(chunk)) * FRAME
        pages.append(page(chunk, granule=granule, serial=serial, seq=seq, flags=4 if last else 0))
        seq += 1
    return b"".join(pages)


def main() -> None:
    data = encode()
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_bytes(data)
    print(f"{TARGET}: {len(data)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
