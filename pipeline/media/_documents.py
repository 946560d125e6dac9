"""The text of a document, for the model: PDFs through pypdf, text files as UTF-8
(or UTF-16 by its byte order mark, or Windows-1252 when it is not UTF-8).

At most ``max_chars`` characters are taken (the rest is never extracted: a
500-page PDF costs no more than its first pages), and ``cut`` says there was
more. A file that cannot be read raises ``Unreadable`` with the reason in words.
"""

from __future__ import annotations

import codecs
import logging
from pathlib import Path
from typing import NamedTuple

from pypdf import PdfReader
from pypdf.errors import DependencyError, DeprecationError, PyPdfError

from pipeline.media._formats import DocumentType

# A text file read as this many bytes per character at most (UTF-8 needs up to 4).
_BYTES_PER_CHAR = 4
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# pypdf logs every oddity of a PDF it still reads; the bot's logs are not the place.
logging.getLogger("pypdf").setLevel(logging.ERROR)


class Unreadable(Exception):
    """A document whose text cannot be read; ``reason`` is short enough for the sender."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason} ({detail})" if detail else reason)
        self.reason = reason
        self.detail = detail


class DocumentText(NamedTuple):
    text: str
    pages: int | None
    cut: bool


def read_document(path: Path, kind: DocumentType, max_chars: int) -> DocumentText:
    """The first ``max_chars`` characters of the document at ``path``."""
    if kind == "pdf":
        return _pdf(path, max_chars)
    return _text(path, max_chars)


def _pdf(path: Path, max_chars: int) -> DocumentText:
    try:
        reader = PdfReader(path)
        locked = reader.is_encrypted and not reader.decrypt("")
        pages = len(reader.pages) if not locked else 0
        text = "" if locked else _pdf_text(reader, max_chars)
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        # pypdf reports a damaged file as whichever of these its parser hits first.
        raise Unreadable("the PDF is damaged", f"{type(exc).__name__}: {exc}") from None
    except RecursionError:
        raise Unreadable("the PDF is damaged", "nested too deeply") from None
    except (NotImplementedError, DependencyError, DeprecationError) as exc:
        # Encrypted for a certificate (/Adobe.PubSec), a filter pypdf cannot decode
        # (JBIG2 without jbig2dec, the abbreviated /LZW)…
        raise Unreadable(
            "it uses a PDF feature I can't read", f"{type(exc).__name__}: {exc}"
        ) from None
    if locked:
        raise Unreadable("the PDF is protected by a password")
    return DocumentText(text[:max_chars], pages, len(text) > max_chars)


def _pdf_text(reader: PdfReader, max_chars: int) -> str:
    """The pages' text until there is more than ``max_chars`` of it."""
    parts: list[str] = []
    length = 0
    for page in reader.pages:
        if length > max_chars:
            break
        text = page.extract_text().strip()
        if text:
            parts.append(text)
            length += len(text) + 2
    return "\n\n".join(parts)


def _text(path: Path, max_chars: int) -> DocumentText:
    limit = max_chars * _BYTES_PER_CHAR
    with path.open("rb") as file:
        data = file.read(limit + 1)
    text = _decoded(data[:limit], whole=len(data) <= limit)
    return DocumentText(text[:max_chars], None, len(text) > max_chars or len(data) > limit)


def _decoded(data: bytes, *, whole: bool) -> str:
    """A text file's bytes as text: UTF-8 or UTF-16 by their byte order mark, else
    UTF-8, else Windows-1252 (what Excel saves a CSV as); ``whole``: not cut, so
    a character cut off at the end is not waited for."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            decoder = codecs.getincrementaldecoder(codec)(errors="replace")
            return str(decoder.decode(data[len(bom) :], final=whole))
    if b"\x00" in data[:4096]:
        raise Unreadable("it is not a text file")
    try:
        return str(codecs.getincrementaldecoder("utf-8")().decode(data, final=whole))
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")
