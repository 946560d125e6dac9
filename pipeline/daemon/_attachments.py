"""What a turn's attachments need before the LLM sees them, as pure functions.

A burst is answered once every attachment in it is ready: a voice note has
its transcript, a document its text, and one that cannot be used has had its
short, honest notice (which takes that message out of the queue; the rest of
the burst is answered as usual). ``next_step`` says which comes next, one at a
time; ``_media.MediaStep`` runs it and records the outcome, and the turn looks
at the burst again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple
from urllib.parse import urlsplit

from events.model import Media, ReplyPlanned
from pipeline.config import AppConfig, Entity, GroupEntity, LoadedConfig
from pipeline.daemon._replies import Ids, reply_parts
from pipeline.media import document_type
from projections.queue import Item

_WHAT = {
    "voice": "voice note",
    "audio": "audio message",
    "image": "image",
    "video": "video",
    "document": "document",
    "sticker": "sticker",
}

Need = Literal["notice", "transcribe", "read"]


class Step(NamedTuple):
    """The next thing the burst's attachments need: ``item``'s ``need``."""

    item: Item
    media: Media
    need: Need


def what(media: Media) -> str:
    """The attachment in words ("voice note")."""
    return _WHAT[media.kind]


def answerable(media: Media | None) -> bool:
    """A message with this attachment is worth a turn even without a caption."""
    return media is not None and media.kind != "sticker" and media.problem != "disabled"


def notice(media: Media) -> str:
    """What the sender is told when an attachment cannot be used."""
    it = what(media)
    if media.problem == "too_large":
        return f"That {it} is too large for me ({media.detail})."
    if media.problem == "download_failed":
        return f"I couldn't download that {it}. Could you send it again?"
    if media.problem == "unsupported":
        return f"I can't open that {it}: {media.detail}."
    return f"I couldn't open that {it}: the file seems damaged."


def next_step(run: Sequence[Item]) -> Step | None:
    """The first attachment of ``run`` that needs something before the turn; None: ready."""
    for item in run:
        media = item.media
        if media is None or media.problem == "disabled":
            continue
        if media.problem is not None:
            return Step(item, media, "notice")
        if not media.sha256:
            continue
        if media.kind in ("voice", "audio") and item.transcript is None:
            return Step(item, media, "transcribe")
        if (
            media.kind == "document"
            and item.document is None
            and document_type(media.mime, media.file_name) is not None
        ):
            return Step(item, media, "read")
    return None


def tell(config: AppConfig, chat: str, item: Item, text: str, ids: Ids) -> list[ReplyPlanned]:
    """A short answer to ``item`` alone, without the LLM."""
    return reply_parts(
        chat,
        text,
        [item],
        whatsapp=config.whatsapp,
        call_id=None,
        new_id=ids.new_id,
        new_wa_id=ids.new_wa_id,
    )


def missing_key(loaded: LoadedConfig) -> bool:
    """A voice note could arrive, be transcribed, and fail for want of a key: media on,
    OpenAI's endpoint, no key set, and a chat whose voice notes are answered."""
    config = loaded.config
    media = config.media
    host = urlsplit(media.transcription.base_url).hostname
    if not media.enabled or host != "api.openai.com" or loaded.secrets.transcription_key:
        return False
    return any(hears_voice(entity) for entity in config.monitored_entities)


def hears_voice(entity: Entity) -> bool:
    """A voice note in this chat is answered: a person, the owner's own chat, an
    ``always`` group; a mention or keyword group needs a caption, which voice notes lack."""
    return not isinstance(entity, GroupEntity) or entity.trigger.mode == "always"
