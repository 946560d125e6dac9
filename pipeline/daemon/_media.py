"""Attachments made ready for a turn: voice notes transcribed, documents read, bad ones answered.

Runs when a burst is about to go to the LLM (after the debounce and the
limits), one step at a time: each step appends its outcome, the queue
projection folds it into the item, and the agent looks at the burst again.
So a transcript is made once and kept in the log (replay reuses it, a restart
does not pay twice), and a burst is never answered half-prepared.

An attachment that cannot be used gets the sender a short, honest reply of
its own (which takes the message out of the queue); the rest of the burst is
answered as usual.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import anyio.to_thread

from events.model import (
    AnyEvent,
    DocumentRead,
    Media,
    MediaTranscribed,
    ReplyPlanned,
    TranscriptionFailed,
)
from pipeline.config import AppConfig, Entity, GroupEntity, LoadedConfig
from pipeline.daemon._folded_log import FoldedLog
from pipeline.daemon._replies import reply_parts
from pipeline.llm import LlmError, Transcriber
from pipeline.logs import get_logger
from pipeline.media import MediaStore, Unreadable, document_type, read_document
from projections.queue import Item

log = get_logger("wabot.agent")

_WHAT = {
    "voice": "voice note",
    "audio": "audio message",
    "image": "image",
    "video": "video",
    "document": "document",
    "sticker": "sticker",
}


def answerable(media: Media | None) -> bool:
    """A message with this attachment is worth a turn even without a caption."""
    return media is not None and media.kind != "sticker" and media.problem != "disabled"


def notice(media: Media) -> str:
    """What the sender is told when an attachment cannot be used."""
    what = _WHAT[media.kind]
    if media.problem == "too_large":
        return f"That {what} is too large for me ({media.detail})."
    if media.problem == "download_failed":
        return f"I couldn't download that {what}. Could you send it again?"
    if media.problem == "unsupported":
        return f"I can't open that {what}: {media.detail}."
    return f"I couldn't open that {what}: the file seems damaged."


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


class MediaStep:
    """Prepares a burst's attachments; ``prepare`` returns True when it recorded something."""

    def __init__(
        self,
        folded: FoldedLog,
        transcriber: Callable[[LoadedConfig], Transcriber],
        store: MediaStore,
        *,
        new_id: Callable[[], str],
        new_wa_id: Callable[[], str | None],
    ) -> None:
        self.folded = folded
        self.transcriber = transcriber
        self.store = store
        self.new_id = new_id
        self.new_wa_id = new_wa_id

    async def prepare(self, loaded: LoadedConfig, chat: str, run: list[Item]) -> bool:
        """Take the next step for the first attachment of ``run`` that needs one."""
        config = loaded.config
        for item in run:
            media = item.media
            if media is None or media.problem == "disabled":
                continue
            if media.problem is not None:
                await self.folded.append(*self._tell(config, chat, item, notice(media)))
                return True
            if not media.sha256:
                continue
            if media.kind in ("voice", "audio") and item.transcript is None:
                await self._transcribe(loaded, chat, item, media)
                return True
            if media.kind == "document" and item.document is None:
                kind = document_type(media.mime, media.file_name)
                if kind is not None:
                    await self.folded.append(*await self._read(config, chat, item, media))
                    return True
        return False

    async def _transcribe(self, loaded: LoadedConfig, chat: str, item: Item, media: Media) -> None:
        attempts = 0

        async def failed(error: LlmError, attempt: int, final: bool) -> None:
            nonlocal attempts
            attempts = attempt
            log.warning(
                "transcription_failed",
                chat=chat,
                msg_id=item.msg_id,
                attempt=attempt,
                final=final,
                error=error.loggable,
            )
            if not final:  # the final one is recorded with the sender's answer, at once
                await self.folded.append(self._failure(chat, item, error, attempt, final=False))

        sorry = f"I couldn't listen to that {_WHAT[media.kind]}."
        try:
            heard = await self.transcriber(loaded).transcribe(
                self.store.path(media.sha256),
                mime=media.mime,
                file_name=media.file_name,
                seconds=media.seconds,
                on_failure=failed,
            )
        except LlmError as exc:
            failure = self._failure(chat, item, exc, attempts, final=True)
            await self.folded.append(failure, *self._tell(loaded.config, chat, item, sorry))
            return
        except Exception as exc:
            # A bug on our side: recorded as final, so the message leaves the queue.
            log.exception("transcription_crashed", chat=chat, msg_id=item.msg_id)
            error = f"internal error: {type(exc).__name__}: {exc}"
            failure = TranscriptionFailed(chat=chat, msg_id=item.msg_id, error=error, final=True)
            await self.folded.append(failure, *self._tell(loaded.config, chat, item, sorry))
            return
        done = MediaTranscribed(
            chat=chat,
            msg_id=item.msg_id,
            text=heard.text,
            model=heard.model,
            cost_usd=heard.cost_usd,
            seconds=heard.seconds,
            sha256=media.sha256,
            latency_ms=heard.latency_ms,
        )
        if heard.text:
            await self.folded.append(done)
        else:
            text = f"I couldn't make out any words in that {_WHAT[media.kind]}."
            await self.folded.append(done, *self._tell(loaded.config, chat, item, text))

    async def _read(self, config: AppConfig, chat: str, item: Item, media: Media) -> list[AnyEvent]:
        kind = document_type(media.mime, media.file_name)
        assert kind is not None
        path = self.store.path(media.sha256)
        limit = config.limits.max_input_chars
        try:
            read = await anyio.to_thread.run_sync(read_document, path, kind, limit)
        except (Unreadable, OSError) as exc:
            short = exc.reason if isinstance(exc, Unreadable) else "its file is gone"
            error = str(exc)
            log.warning("document_unreadable", chat=chat, msg_id=item.msg_id, error=error)
            text = f"I couldn't read that document: {short}."
            failed = DocumentRead(chat=chat, msg_id=item.msg_id, error=error)
            return [failed, *self._tell(config, chat, item, text)]
        return [
            DocumentRead(
                chat=chat, msg_id=item.msg_id, text=read.text, pages=read.pages, cut=read.cut
            )
        ]

    def _failure(
        self, chat: str, item: Item, error: LlmError, attempt: int, *, final: bool
    ) -> TranscriptionFailed:
        return TranscriptionFailed(
            chat=chat,
            msg_id=item.msg_id,
            status=error.status,
            error=str(error),
            attempt=attempt or 1,
            final=final,
        )

    def _tell(self, config: AppConfig, chat: str, item: Item, text: str) -> list[ReplyPlanned]:
        """A short answer to ``item`` alone, without the LLM."""
        log.info("media_notice", chat=chat, msg_id=item.msg_id)
        return reply_parts(
            chat,
            text,
            [item],
            whatsapp=config.whatsapp,
            call_id=None,
            new_id=self.new_id,
            new_wa_id=self.new_wa_id,
        )
