"""What the model is told of an attachment: a bracketed note in the message's line,
the transcript of a voice note (marked as one, never passed off as typed), a
document's text after the turn, and the images that go with it.

Pure functions of the queue items (``MessageReceived.media`` and the
``MediaTranscribed``/``DocumentRead`` events folded into them), so replay
composes exactly what the agent composed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from events.model import DocumentRead, ImageRef, Media
from pipeline.media import human_size

DOCUMENT_CUT = "[… document cut: only its first {limit} characters are shown]"


class Attached(Protocol):
    """What a prompt reads of a message with an attachment (a queue item)."""

    @property
    def media(self) -> Media | None: ...
    @property
    def transcript(self) -> str | None: ...
    @property
    def document(self) -> DocumentRead | None: ...


def stored(media: Media | None) -> bool:
    """The attachment's bytes are in the store and nothing is wrong with them."""
    return media is not None and bool(media.sha256) and media.problem is None


def note(message: Attached, vision: bool) -> str:
    """The bracketed note that stands for the attachment in the message's line ("" if none)."""
    media = message.media
    if media is None:
        return ""
    length = _length(media.seconds)
    if media.kind in ("voice", "audio"):
        what = "voice note" if media.kind == "voice" else f"audio{_name(media)}"
        if message.transcript is not None:
            return f"[{what}{length}, automatic transcript] {message.transcript}".rstrip()
        return f"[{what}{length}, not transcribed]"
    if media.kind == "image":
        return "[image]" if vision and stored(media) else "[image, not shown to you]"
    if media.kind == "video":
        return f"[video{length}, not shown to you]"
    if media.kind == "document":
        return _document_note(media, message.document)
    return f"[{media.kind}]"


def document_block(message: Attached, max_chars: int) -> str | None:
    """The document's text as context after the turn, cut at ``max_chars`` with a marker."""
    read = message.document
    media = message.media
    if read is None or read.error or not read.text.strip() or media is None:
        return None
    name = media.file_name or "document"
    text = read.text[:max_chars]
    lines = [f'[text of "{name}"]', text]
    if read.cut or len(read.text) > max_chars:
        lines.append(DOCUMENT_CUT.format(limit=min(max_chars, len(read.text))))
    lines.append(f'[end of "{name}"]')
    return "\n".join(lines)


def images_of(messages: Sequence[Attached], vision: bool) -> tuple[ImageRef, ...]:
    """The images the model sees with the turn (none with ``media.vision`` off)."""
    if not vision:
        return ()
    return tuple(
        ImageRef(sha256=m.media.sha256, mime=m.media.mime)
        for m in messages
        if m.media is not None and m.media.kind == "image" and stored(m.media)
    )


def _document_note(media: Media, read: DocumentRead | None) -> str:
    what = f"document{_name(media)}"
    if read is not None and not read.error:
        pages = f", {read.pages} page{'s' if read.pages != 1 else ''}" if read.pages else ""
        if read.text.strip():
            return f"[{what}{pages}: its text follows below]"
        return f"[{what}{pages}: there is no text in it, perhaps a scan]"
    size = f", {human_size(media.size)}" if media.size else ""
    return f"[{what} ({media.mime or 'unknown type'}{size}): its contents cannot be read here]"


def _name(media: Media) -> str:
    return f' "{media.file_name}"' if media.file_name else ""


def _length(seconds: float | None) -> str:
    if not seconds:
        return ""
    whole = round(seconds)
    return f", {whole} s" if whole < 60 else f", {whole // 60} min {whole % 60} s"
