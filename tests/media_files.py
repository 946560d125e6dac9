"""Attachments as test files: a voice note, real PNG and PDF files, and broken ones.

The PDF is a real one (catalog, pages, a Helvetica text stream per page, an
xref table with true offsets), so pypdf reads its text as it would a phone's.
"""

from __future__ import annotations

import base64
import random
import struct
import zlib
from pathlib import Path


def voice_note(size: int = 4096, seed: int = 7) -> bytes:
    """An Ogg Opus voice note's worth of bytes (the header magic, then noise)."""
    noise = random.Random(seed).randbytes(max(size - 4, 0))
    return b"OggS" + noise


def png(width: int = 2, height: int = 2) -> bytes:
    """A real, decodable RGB PNG of one colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    rows = b"".join(b"\x00" + b"\xc0\x40\x20" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def jpeg(size: int = 2048) -> bytes:
    """Bytes that start and end like a JPEG (JFIF), as the format sniffers read them."""
    head = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    return head + random.Random(size).randbytes(max(size - len(head) - 2, 0)) + b"\xff\xd9"


def pdf_bomb(mb: float) -> bytes:
    """A PDF of a few KB whose one page inflates to ``mb`` MB of text operators."""
    line = b"BT /F1 12 Tf 72 700 Td (" + b"A" * 80 + b") Tj ET\n"
    drawn = zlib.compress(line * int(mb * 1_000_000 // len(line)), 9)
    return pdf("", stream=b"/Filter /FlateDecode ", drawn=drawn)


def pdf(
    *pages: str, stream: bytes = b"", encrypt: bytes = b"", drawn: bytes | None = None
) -> bytes:
    """A PDF with one page per text (each line of a text is a line on its page);
    ``stream``: more of each content stream's dictionary (a ``/Filter``),
    ``encrypt``: the trailer's ``/Encrypt`` dictionary, ``drawn``: each page's
    content stream as it is stored, instead of its text's."""
    objects: list[bytes] = []
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    font = 3 + 2 * len(pages)
    for i, text in enumerate(pages):
        page, contents = 3 + 2 * i, 4 + 2 * i
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents {contents} 0 R "
            f"/Resources << /Font << /F1 {font} 0 R >> >> >>".encode()
        )
        assert page == len(objects)
        lines = [f"({_escape(line)}) Tj 0 -14 Td" for line in text.splitlines() or [""]]
        if drawn is None:
            content = f"BT /F1 12 Tf 72 800 Td {' '.join(lines)} ET".encode()
        else:
            content = drawn
        head = b"<< /Length %d %s>>\nstream\n" % (len(content), stream)
        objects.append(head + content + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    trailer = b""
    if encrypt:
        objects.append(encrypt)
        trailer = b"/Encrypt %d 0 R /ID [<%s> <%s>] " % (len(objects), b"00" * 16, b"00" * 16)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R %s>>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        trailer,
        xref,
    )
    return bytes(out)


# Encrypted for a certificate, as Acrobat's "encrypt with certificate" does.
CERTIFICATE = (
    b"<< /Filter /Adobe.PubSec /SubFilter /adbe.pkcs7.s5 /V 4 /Length 128 /Recipients [<3082>] >>"
)


def broken_pdf() -> bytes:
    """Starts like a PDF, then nothing a reader can use."""
    return b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 9 0 R\ngarbage\n"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
