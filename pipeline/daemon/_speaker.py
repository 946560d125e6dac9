"""Speaks a planned voice reply before it is sent, and records what came of it.

A reply part planned with ``speech`` (``_voice``) is spoken when the sender
reaches it: the audio is stored under ``STORE/media/`` (content-addressed,
0600, swept with the events that name it) and ``SpeechSynthesized`` is
appended before anything is sent, so a restart sends the stored note and
never asks for the speech again. Speaking that fails for good is recorded as
a final ``SpeechFailed`` and the part's text goes instead: the words reach
the chat either way. A stored note that has gone missing is sent as text too.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio.to_thread

from events.model import ReplyPlanned, SpeechFailed, SpeechSynthesized
from pipeline.config import LoadedConfig
from pipeline.daemon._folded_log import FoldedLog
from pipeline.llm import LlmError, Synthesizer
from pipeline.logs import get_logger
from pipeline.media import MediaStore, NotOpus, opus_info, whole_seconds
from pipeline.transport import Voice
from projections.outbox import Entry

log = get_logger("wabot.sender")


class Speaker:
    """Turns a reply part's words into the voice note it is sent as."""

    def __init__(
        self,
        folded: FoldedLog,
        synthesizer: Callable[[LoadedConfig], Synthesizer],
        store: MediaStore,
    ) -> None:
        self.folded = folded
        self.synthesizer = synthesizer
        self.store = store

    async def voice(self, loaded: LoadedConfig, entry: Entry) -> Voice | None:
        """The voice note ``entry`` is sent as (spoken now unless the log has it);
        None: it goes as text."""
        planned = entry.event
        if planned.speech is None or entry.unspoken:
            return None
        made = entry.speech or await self._speak(loaded, planned)
        if made is None:
            return None
        path = self.store.path(made.sha256)
        try:
            info = await anyio.to_thread.run_sync(lambda: opus_info(path.read_bytes()))
        except (OSError, NotOpus) as exc:
            log.warning("voice_note_unreadable", chat=planned.chat, error=str(exc))
            return None
        # Absolute, as the stdio line promises: a relative --store means nothing to a reader.
        where = str(path.absolute())
        return Voice(path=where, seconds=whole_seconds(info.seconds), waveform=info.waveform)

    async def _speak(self, loaded: LoadedConfig, planned: ReplyPlanned) -> SpeechSynthesized | None:
        """Ask for the speech and keep it; every failure recorded, None when final."""
        assert planned.speech is not None
        chat, reply_id = planned.chat, planned.reply_id
        attempts = 0

        async def failed(error: LlmError, attempt: int, final: bool) -> None:
            nonlocal attempts
            attempts = attempt
            log.warning(
                "speech_failed", chat=chat, attempt=attempt, final=final, error=error.loggable
            )
            if not final:  # the final one is recorded below, whatever ended it
                await self.folded.append(
                    _failure(planned, str(error), error.status, attempt, False)
                )

        try:
            speech = await self.synthesizer(loaded).speak(
                planned.text,
                voice=planned.speech.voice,
                model=planned.speech.model,
                on_failure=failed,
            )
            stored = await self.store.save_bytes(speech.audio)
        except LlmError as exc:
            await self.folded.append(_failure(planned, str(exc), exc.status, attempts, True))
            return None
        except Exception as exc:
            # A bug or a full disk on our side: the words still go, as text.
            log.exception("speech_crashed", chat=chat, reply_id=reply_id)
            error = f"internal error: {type(exc).__name__}: {exc}"
            await self.folded.append(_failure(planned, error, None, attempts, True))
            return None
        done = SpeechSynthesized(
            chat=chat,
            reply_id=reply_id,
            sha256=stored.sha256,
            size=stored.size,
            seconds=speech.seconds,
            model=speech.model,
            voice=speech.voice,
            cost_usd=speech.cost_usd,
            latency_ms=speech.latency_ms,
        )
        await self.folded.append(done)
        log.info("speech_synthesized", chat=chat, seconds=round(speech.seconds, 2))
        return done


def _failure(
    planned: ReplyPlanned, error: str, status: int | None, attempt: int, final: bool
) -> SpeechFailed:
    return SpeechFailed(
        chat=planned.chat,
        reply_id=planned.reply_id,
        status=status,
        error=error,
        attempt=attempt or 1,
        final=final,
    )
