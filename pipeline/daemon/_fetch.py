"""An attachment of a monitored chat's message, fetched into the media store at intake.

Runs after intake has filed the message under a monitored chat and before its
``MessageReceived`` is appended, so the event names the stored file
(``media.sha256``) and nothing of an unmonitored chat is ever downloaded. An
attachment that cannot be taken (over ``media.max_mb``, a failed download, an
image that is not one) is recorded with the reason and the message goes on
without it; the agent tells the sender.
"""

from __future__ import annotations

import msgspec

from events.model import Media, MediaProblem, MessageReceived
from pipeline.config import MediaConfig
from pipeline.logs import get_logger
from pipeline.media import (
    VISION_TYPES,
    MediaError,
    MediaSource,
    MediaStore,
    base_mime,
    human_size,
    sniff_image,
)

log = get_logger("wabot.daemon")


async def fetch_media(
    ev: MessageReceived, source: MediaSource | None, config: MediaConfig, store: MediaStore
) -> MessageReceived:
    """``ev`` with its attachment stored (``sha256``, real ``size``) or its problem noted."""
    media = ev.media
    if media is None or media.problem is not None or media.kind == "sticker":
        return ev  # stickers are ignored: never fetched
    declared = source.size if source is not None else None
    if not config.enabled:
        return _with(ev, media, problem="disabled", size=declared or media.size)
    if source is None:
        return ev
    limit = config.max_bytes
    if declared is not None and declared > limit:
        detail = f"{human_size(declared)}, over the {config.max_mb:g} MB limit"
        return _with(ev, media, problem="too_large", size=declared, detail=detail)
    try:
        stored = await store.save(source, limit)
    except MediaError as exc:
        detail = (
            f"over the {config.max_mb:g} MB limit" if exc.problem == "too_large" else exc.detail
        )
        return _with(ev, media, problem=exc.problem, size=declared or 0, detail=detail)
    except OSError as exc:  # the store's disk, not the sender's file
        log.error("media_not_stored", chat=ev.chat, msg_id=ev.msg_id, error=str(exc))  # noqa: TRY400
        detail = f"cannot store the file: {exc.strerror or exc}"
        return _with(ev, media, problem="download_failed", size=declared or 0, detail=detail)
    media = msgspec.structs.replace(media, sha256=stored.sha256, size=stored.size)
    if not stored.size:
        return _with(ev, media, problem="corrupt", size=0, detail="the file is empty")
    if media.kind == "image":
        media = _checked_image(media, stored.head)
    log.info("media_stored", chat=ev.chat, msg_id=ev.msg_id, kind=media.kind, size=media.size)
    return msgspec.structs.replace(ev, media=media)


def _checked_image(media: Media, head: bytes) -> Media:
    """An image the model can take, typed by its bytes; else the problem."""
    found = sniff_image(head)
    if found is not None:
        return (
            media if base_mime(media.mime) == found else msgspec.structs.replace(media, mime=found)
        )
    declared = base_mime(media.mime)
    if declared.startswith("image/") and declared not in VISION_TYPES:
        detail = f"{declared} images are not supported (JPEG, PNG, GIF and WebP are)"
        return msgspec.structs.replace(media, problem="unsupported", detail=detail)
    return msgspec.structs.replace(media, problem="corrupt", detail="not a readable image")


def _with(
    ev: MessageReceived, media: Media, *, problem: MediaProblem, size: int, detail: str = ""
) -> MessageReceived:
    log.warning("media_not_taken", chat=ev.chat, msg_id=ev.msg_id, kind=media.kind, problem=problem)
    noted = msgspec.structs.replace(media, problem=problem, size=size, detail=detail)
    return msgspec.structs.replace(ev, media=noted)
