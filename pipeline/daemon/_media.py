"""Attachments made ready for a turn: voice notes transcribed, documents read.

The turn asks for one step at a time (``_attachments.next_step``); this runs
it and appends its outcome, the queue projection folds it into the item, and
the turn looks at the burst again. So a transcript is made once and kept in
the log (replay reuses it, a restart does not pay twice), and a burst is never
answered half-prepared. An attachment that turns out unusable gets the sender
a short, honest reply of its own, recorded with the outcome.
"""

from __future__ import annotations

from collections.abc import Callable

from events.model import (
    AnyEvent,
    DocumentRead,
    Media,
    MediaTranscribed,
    ReplyPlanned,
    TranscriptionFailed,
)
from pipeline.config import AppConfig, LoadedConfig
from pipeline.daemon._attachments import Step, tell, what
from pipeline.daemon._folded_log import FoldedLog
from pipeline.daemon._replies import Ids
from pipeline.llm import LlmError, Transcriber
from pipeline.logs import get_logger
from pipeline.media import DEADLINE_SECONDS, MediaStore, Unreadable, document_type, read_apart
from projections.queue import Item

log = get_logger("wabot.agent")


class MediaStep:
    """Runs a burst's next attachment step and records what came of it."""

    def __init__(
        self,
        folded: FoldedLog,
        transcriber: Callable[[LoadedConfig], Transcriber],
        store: MediaStore,
        ids: Ids,
    ) -> None:
        self.folded = folded
        self.transcriber = transcriber
        self.store = store
        self.ids = ids

    async def run(self, loaded: LoadedConfig, chat: str, step: Step) -> None:
        """Transcribe or read ``step``'s attachment (a notice needs no executor)."""
        if step.need == "transcribe":
            await self._transcribe(loaded, chat, step.item, step.media)
        elif step.need == "read":
            await self.folded.append(*await self._read(loaded.config, chat, step.item, step.media))

    async def _transcribe(self, loaded: LoadedConfig, chat: str, item: Item, media: Media) -> None:
        attempts = 0

        async def failed(error: LlmError, attempt: int, final: bool) -> None:
            nonlocal attempts
            attempts = attempt
            log.warning(
                "transcription_failed",
                chat=chat,
                msg_id=item.message.msg_id,
                attempt=attempt,
                final=final,
                error=error.loggable,
            )
            if not final:  # the final one is recorded with the sender's answer, at once
                await self.folded.append(self._failure(chat, item, error, attempt, final=False))

        sorry = f"I couldn't listen to that {what(media)}."
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
            log.exception("transcription_crashed", chat=chat, msg_id=item.message.msg_id)
            error = f"internal error: {type(exc).__name__}: {exc}"
            failure = TranscriptionFailed(
                chat=chat, msg_id=item.message.msg_id, error=error, final=True
            )
            await self.folded.append(failure, *self._tell(loaded.config, chat, item, sorry))
            return
        done = MediaTranscribed(
            chat=chat,
            msg_id=item.message.msg_id,
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
            text = f"I couldn't make out any words in that {what(media)}."
            await self.folded.append(done, *self._tell(loaded.config, chat, item, text))

    async def _read(self, config: AppConfig, chat: str, item: Item, media: Media) -> list[AnyEvent]:
        kind = document_type(media.mime, media.file_name)
        assert kind is not None
        path = self.store.path(media.sha256)
        limit = config.limits.max_input_chars
        try:
            read = await read_apart(path, kind, limit, seconds=DEADLINE_SECONDS)
        except (Unreadable, OSError) as exc:
            short = exc.reason if isinstance(exc, Unreadable) else "its file is gone"
            error = str(exc)
            log.warning("document_unreadable", chat=chat, msg_id=item.message.msg_id, error=error)
        except Exception as exc:
            # A reader's bug or a case it does not know: recorded as unreadable all
            # the same, so the message leaves the queue (else the step fails for good).
            log.exception("document_read_crashed", chat=chat, msg_id=item.message.msg_id)
            short = "something went wrong reading it"
            error = f"internal error: {type(exc).__name__}: {exc}"
        else:
            return [
                DocumentRead(
                    chat=chat,
                    msg_id=item.message.msg_id,
                    text=read.text,
                    pages=read.pages,
                    cut=read.cut,
                )
            ]
        text = f"I couldn't read that document: {short}."
        failed = DocumentRead(chat=chat, msg_id=item.message.msg_id, error=error)
        return [failed, *self._tell(config, chat, item, text)]

    def _failure(
        self, chat: str, item: Item, error: LlmError, attempt: int, *, final: bool
    ) -> TranscriptionFailed:
        return TranscriptionFailed(
            chat=chat,
            msg_id=item.message.msg_id,
            status=error.status,
            error=str(error),
            attempt=attempt or 1,
            final=final,
        )

    def _tell(self, config: AppConfig, chat: str, item: Item, text: str) -> list[ReplyPlanned]:
        """A short answer to ``item`` alone, without the LLM."""
        log.info("media_notice", chat=chat, msg_id=item.message.msg_id)
        return tell(config, chat, item, text, self.ids)
