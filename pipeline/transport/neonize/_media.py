"""Attachments of WhatsApp messages: what they are (read from the proto) and their download.

Nothing is downloaded here on arrival: the transport hands the daemon a
``Download`` with the message, and the daemon runs it only for a monitored
chat, after checking the declared size (``fileLength``) against its limit.
whatsmeow's ``DownloadAny`` fetches and decrypts image, video, audio,
document and sticker messages; round video notes (``ptvMessage``) are not
among them, so those are recorded without their bytes.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from neonize.exc import DownloadError

from events.model import Media, MediaKind
from pipeline.media import MediaError, MediaSink
from pipeline.transport.neonize._wrappers import innermost

# Message fields with an attachment, and what it is (``audioMessage`` with PTT: a voice note).
PARTS: tuple[tuple[str, MediaKind], ...] = (
    ("imageMessage", "image"),
    ("videoMessage", "video"),
    ("ptvMessage", "video"),
    ("audioMessage", "audio"),
    ("documentMessage", "document"),
    ("stickerMessage", "sticker"),
)


def media_of(message: Any) -> Media | None:
    """The attachment of a WhatsApp message (wrapped or not), as its sender declared it."""
    message = innermost(message)
    for field, kind in PARTS:
        if message.HasField(field):
            return _media(field, kind, getattr(message, field))
    return None


def _media(field: str, kind: MediaKind, part: Any) -> Media:
    fields = part.DESCRIPTOR.fields_by_name
    if kind == "audio" and part.PTT:
        kind = "voice"
    seconds = float(part.seconds) if "seconds" in fields and part.seconds else None
    name = part.fileName if "fileName" in fields and part.fileName else None
    media = Media(
        kind=kind, mime=part.mimetype, size=part.fileLength, seconds=seconds, file_name=name
    )
    if field == "ptvMessage":
        return Media(
            kind=kind,
            mime=media.mime,
            size=media.size,
            seconds=seconds,
            problem="unsupported",
            detail="a round video note cannot be downloaded",
        )
    return media


class Download:
    """The bytes of one received message, fetched from WhatsApp when asked."""

    def __init__(self, client: Any, message: Any, size: int | None) -> None:
        self._client = client
        # Unwrapped: DownloadAny looks for the attachment at the top of the message only.
        self._message = innermost(message)
        self._size = size

    @property
    def size(self) -> int | None:
        return self._size

    @property
    def in_hand(self) -> bool:
        return False

    async def download(self, sink: MediaSink) -> None:
        try:
            data = await self._client.download_any(self._message)
        except DownloadError as exc:
            raise MediaError("download_failed", f"WhatsApp download failed: {exc}") from None
        except Exception as exc:  # the FFI answered with something unreadable
            detail = f"WhatsApp download failed: {type(exc).__name__}: {exc}"
            raise MediaError("download_failed", detail) from None
        if not data:
            raise MediaError("download_failed", "WhatsApp download returned no bytes")
        await anyio.to_thread.run_sync(sink.write, data)


def download_for(client: Any, message: Any, media: Media | None) -> Download | None:
    """The download to hand over with a message, when its attachment is worth fetching."""
    if media is None or media.kind == "sticker" or media.problem is not None:
        return None
    return Download(client, message, media.size or None)
