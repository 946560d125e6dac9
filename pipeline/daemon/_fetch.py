"""An attachment of a monitored chat's message, fetched into the media store.

Intake files the message under a monitored chat first, so nothing of an
unmonitored chat is ever downloaded. Bytes already in hand (carried in with
the message) are stored before the message is recorded. Bytes that must be
read or downloaded are not waited for: the message is recorded at once with
``media.fetching`` set, the fetch runs beside intake with a time limit, and a
``MediaFetched`` event records how it ended. So a download that hangs never
holds a message back from the log, nor any other chat.

An attachment that cannot be taken (over ``media.max_mb``, a failed or
timed-out download, an image that is not one) is recorded with the reason and
the message goes on without it; the agent tells the sender.
"""

from __future__ import annotations

import anyio
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

# Seconds a fetch may take: 16 MB (media.max_mb's default) at ~140 kB/s.
FETCH_TIMEOUT = 120.0


def on_arrival(
    ev: MessageReceived, source: MediaSource | None, config: MediaConfig
) -> tuple[MessageReceived, MediaSource | None]:
    """``ev`` as it is recorded on arrival, and the source still to fetch (None: none).

    What needs no bytes is settled here: stickers (never fetched), media turned
    off, a declared size over the limit.
    """
    media = ev.media
    if media is None or media.problem is not None or media.kind == "sticker":
        return ev, None
    declared = source.size if source is not None else None
    if not config.enabled:
        return _noted(ev, media, problem="disabled", size=declared or media.size), None
    if source is None:
        return ev, None
    if declared is not None and declared > config.max_bytes:
        detail = f"{human_size(declared)}, over the {config.max_mb:g} MB limit"
        return _noted(ev, media, problem="too_large", size=declared, detail=detail), None
    return msgspec.structs.replace(ev, media=msgspec.structs.replace(media, fetching=True)), source


async def fetched(
    ev: MessageReceived,
    source: MediaSource,
    config: MediaConfig,
    store: MediaStore,
    *,
    timeout: float = FETCH_TIMEOUT,
) -> Media:
    """The attachment of ``ev`` once fetched: stored (``sha256``, real ``size``) or its
    problem noted; never raises for the file's sake."""
    assert ev.media is not None
    media = msgspec.structs.replace(ev.media, fetching=False)
    declared = source.size
    try:
        with anyio.fail_after(timeout):
            stored = await store.save(source, config.max_bytes)
    except TimeoutError:
        detail = f"not fetched within {timeout:g} s"
        return _problem(ev, media, problem="download_failed", size=declared or 0, detail=detail)
    except MediaError as exc:
        detail = (
            f"over the {config.max_mb:g} MB limit" if exc.problem == "too_large" else exc.detail
        )
        return _problem(ev, media, problem=exc.problem, size=declared or 0, detail=detail)
    except OSError as exc:  # the store's disk, not the sender's file
        log.error("media_not_stored", chat=ev.chat, msg_id=ev.msg_id, error=str(exc))  # noqa: TRY400
        detail = f"cannot store the file: {exc.strerror or exc}"
        return _problem(ev, media, problem="download_failed", size=declared or 0, detail=detail)
    media = msgspec.structs.replace(media, sha256=stored.sha256, size=stored.size)
    if not stored.size:
        return _problem(ev, media, problem="corrupt", size=0, detail="the file is empty")
    if media.kind == "image":
        media = _checked_image(media, stored.head)
    log.info("media_stored", chat=ev.chat, msg_id=ev.msg_id, kind=media.kind, size=media.size)
    return media


async def fetch_media(
    ev: MessageReceived, source: MediaSource | None, config: MediaConfig, store: MediaStore
) -> MessageReceived:
    """``ev`` with its attachment fetched now: stored, or its problem noted."""
    ev, pending = on_arrival(ev, source, config)
    if pending is None:
        return ev
    return msgspec.structs.replace(ev, media=await fetched(ev, pending, config, store))


def interrupted(media: Media) -> Media:
    """An attachment whose fetch the daemon did not live to finish."""
    detail = "the bot stopped before the download finished"
    return msgspec.structs.replace(media, fetching=False, problem="download_failed", detail=detail)


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


def _noted(
    ev: MessageReceived, media: Media, *, problem: MediaProblem, size: int, detail: str = ""
) -> MessageReceived:
    noted = _problem(ev, media, problem=problem, size=size, detail=detail)
    return msgspec.structs.replace(ev, media=noted)


def _problem(
    ev: MessageReceived, media: Media, *, problem: MediaProblem, size: int, detail: str = ""
) -> Media:
    log.warning("media_not_taken", chat=ev.chat, msg_id=ev.msg_id, kind=media.kind, problem=problem)
    return msgspec.structs.replace(media, problem=problem, size=size, detail=detail)
