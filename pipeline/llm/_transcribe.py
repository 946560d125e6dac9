"""Speech to text over the OpenAI-compatible ``POST {base_url}/audio/transcriptions``.

OpenAI, Groq, vLLM, speaches (faster-whisper-server) and whisper.cpp's server
all take the multipart form ``file``, ``model``, optional ``language`` and
``response_format=json``, and answer ``{"text": "…"}``; OpenAI adds
``usage`` (``{"type": "duration", "seconds": 7}``), OpenRouter a ``cost``.
Failures are the LLM client's (same classes, same retries and backoff). The
file is streamed from disk on every attempt, never read into memory here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio.to_thread
import msgspec

from pipeline.llm._audio import AudioEndpoint
from pipeline.llm._errors import BadRequest
from pipeline.llm._http import OnFailure, post
from pipeline.llm._wire import decode_answer
from pipeline.media import NotOpus, audio_file_name, base_mime, opus_info


class Transcript(msgspec.Struct, frozen=True, kw_only=True):
    text: str
    model: str
    seconds: float | None  # as the service measured it, else as the sender declared it
    cost_usd: float | None
    latency_ms: float


class _Usage(msgspec.Struct):
    type: str = ""
    seconds: float | None = None
    cost: float | None = None


class _Answer(msgspec.Struct):
    text: str
    usage: _Usage | None = None
    duration: float | None = None  # verbose_json, and servers that always send it


class Transcriber(AudioEndpoint):
    """Transcribes audio files at one endpoint with one model."""

    def __init__(self, *, language: str | None, **endpoint: Any) -> None:
        """``endpoint``: ``AudioEndpoint``'s settings (base_url, api_key, model…)."""
        super().__init__("audio/transcriptions", **endpoint)
        self._language = language

    async def transcribe(
        self,
        path: Path,
        *,
        mime: str,
        file_name: str | None = None,
        seconds: float | None = None,
        on_failure: OnFailure | None = None,
    ) -> Transcript:
        """The transcript of the audio file at ``path``; raises ``LlmError`` when final.

        ``seconds`` (the length the sender declared) prices the minute when the
        service does not say how long the audio was; failing both, an Ogg Opus
        file's own length does.
        """
        fields = {"model": self.model, "response_format": "json"}
        if self._language:
            fields["language"] = self._language
        name = audio_file_name(mime, file_name)
        return await self._retrying(
            lambda: self._attempt(path, name, base_mime(mime), fields, seconds), on_failure
        )

    async def _attempt(
        self, path: Path, name: str, mime: str, fields: dict[str, str], seconds: float | None
    ) -> Transcript:
        try:
            audio = path.open("rb")
        except OSError as exc:
            raise BadRequest(f"cannot read the audio file: {exc.strerror or exc}") from None
        with audio:
            response, latency_ms = await post(
                self._http,
                self._url,
                what="transcription",
                api_key=self._api_key,
                timeout=self._timeout,
                data=fields,
                files={"file": (name, audio, mime)},
            )
        answer = decode_answer(response.content, _Answer, what="transcription")
        usage = answer.usage or _Usage()
        measured = usage.seconds if usage.seconds is not None else answer.duration
        length = measured if measured is not None else seconds
        if length is None and usage.cost is None:
            length = await anyio.to_thread.run_sync(_ogg_seconds, path)
        cost = usage.cost
        if cost is None and length is not None:
            cost = self._cost(length)
        return Transcript(
            text=answer.text.strip(),
            model=self.model,
            seconds=length,
            cost_usd=cost,
            latency_ms=latency_ms,
        )


def _ogg_seconds(path: Path) -> float | None:
    """The length of an Ogg Opus file by its pages (as WhatsApp's voice notes are), when
    neither the service nor the sender says: else the minute goes unpriced, and unbudgeted."""
    try:
        return opus_info(path.read_bytes()).seconds
    except (OSError, NotOpus):
        return None
