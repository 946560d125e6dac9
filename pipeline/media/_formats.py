"""What an attachment is, from its declared type, its name and its first bytes."""

from __future__ import annotations

import mimetypes
from typing import Literal

from events.model import MediaKind, MessageKind

DocumentType = Literal["pdf", "text"]
# What both LLM wire shapes accept as image input (OpenAI's and Perplexity's lists agree).
VISION_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
# Text by content, though not ``text/*`` by type.
_TEXT_TYPES = frozenset(
    {
        "application/json",
        "application/xml",
        "application/x-yaml",
        "application/yaml",
        "application/csv",
        "application/x-sh",
        "application/javascript",
        "application/sql",
        "application/x-ndjson",
    }
)
_TEXT_SUFFIXES = (".txt", ".md", ".csv", ".json", ".xml", ".yaml", ".yml", ".log", ".ini", ".toml")
# The suffixes OpenAI's transcription endpoint reads the format from.
_AUDIO_SUFFIX = {
    "audio/ogg": "ogg",
    "audio/opus": "ogg",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/mp4": "m4a",
    "audio/m4a": "m4a",
    "audio/x-m4a": "m4a",
    "audio/aac": "m4a",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/webm": "webm",
    "audio/flac": "flac",
    "audio/x-flac": "flac",
}
_DEFAULT_MIME: dict[MediaKind, str] = {
    "voice": "audio/ogg; codecs=opus",
    "audio": "audio/mpeg",
    "image": "image/jpeg",
    "video": "video/mp4",
    "document": "application/octet-stream",
    "sticker": "image/webp",
}


def base_mime(mime: str) -> str:
    """``audio/ogg`` of ``audio/ogg; codecs=opus``, lower case."""
    return mime.split(";", 1)[0].strip().lower()


def message_kind(kind: MediaKind) -> MessageKind:
    """The ``MessageReceived.kind`` of an attachment: a voice note is audio."""
    return "audio" if kind == "voice" else kind


def guess_mime(kind: MediaKind, name: str | None) -> str:
    """The type of an attachment whose sender did not say: by its name, else by its kind."""
    guessed = mimetypes.guess_type(name, strict=False)[0] if name else None
    return guessed or _DEFAULT_MIME[kind]


def sniff_image(head: bytes) -> str | None:
    """The image type the first bytes show, among ``VISION_TYPES``; None: none of them."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def document_type(mime: str, file_name: str | None) -> DocumentType | None:
    """How a document's text is read (PDF, plain text), or None when it cannot be."""
    base = base_mime(mime)
    name = (file_name or "").lower()
    if base == "application/pdf" or name.endswith(".pdf"):
        return "pdf"
    if base.startswith("text/") or base in _TEXT_TYPES or name.endswith(_TEXT_SUFFIXES):
        return "text"
    return None


def audio_file_name(mime: str, file_name: str | None) -> str:
    """A file name whose suffix tells a transcription service the format."""
    suffix = _AUDIO_SUFFIX.get(base_mime(mime))
    if file_name and (suffix is None or file_name.lower().endswith(f".{suffix}")):
        return file_name
    return f"audio.{suffix or 'ogg'}"
