"""Text to speech over the OpenAI-compatible ``POST {base_url}/audio/speech``.

OpenAI, and the local servers that copy it (speaches, Kokoro-FastAPI, LocalAI),
take JSON ``{"model", "input", "voice", "response_format": "opus"}`` and
answer with the audio itself: an Ogg Opus file, what WhatsApp plays as a
voice note. The answer is checked to be whole Ogg Opus (anything else is a
``MalformedResponse``, not retried) and its
length read from its pages, which prices it: no service reports a cost.
Failures are the LLM client's (same classes, same retries and backoff).
"""

from __future__ import annotations

from typing import Any

import msgspec

from pipeline.llm._audio import AudioEndpoint
from pipeline.llm._errors import MalformedResponse
from pipeline.llm._http import OnFailure, post
from pipeline.media import NotOpus, opus_info


class Speech(msgspec.Struct, frozen=True, kw_only=True):
    audio: bytes  # Ogg Opus
    seconds: float
    waveform: bytes
    model: str
    voice: str
    cost_usd: float
    latency_ms: float


class Synthesizer(AudioEndpoint):
    """Speaks text at one endpoint with one model."""

    def __init__(self, **endpoint: Any) -> None:
        """``endpoint``: ``AudioEndpoint``'s settings (base_url, api_key, model…)."""
        super().__init__("audio/speech", **endpoint)

    async def speak(
        self,
        text: str,
        *,
        voice: str,
        model: str | None = None,
        on_failure: OnFailure | None = None,
    ) -> Speech:
        """``text`` read aloud in ``voice`` by ``model`` (default: the configured one);
        raises ``LlmError`` when final."""
        model = model or self.model
        body = {"model": model, "input": text, "voice": voice, "response_format": "opus"}
        payload = msgspec.json.encode(body)
        return await self._retrying(lambda: self._attempt(payload, body), on_failure)

    async def _attempt(self, payload: bytes, body: dict[str, str]) -> Speech:
        response, latency_ms = await post(
            self._http,
            self._url,
            what="speech",
            api_key=self._api_key,
            timeout=self._timeout,
            sent=body,
            content=payload,
            headers={"content-type": "application/json", "accept": "audio/ogg"},
        )
        audio = response.content
        try:
            info = opus_info(audio)
        except NotOpus as exc:
            kind = response.headers.get("content-type", "no content type")
            raise MalformedResponse(f"speech answer is not Ogg Opus ({kind}): {exc}") from None
        return Speech(
            audio=audio,
            seconds=info.seconds,
            waveform=info.waveform,
            model=body["model"],
            voice=body["voice"],
            cost_usd=self._cost(info.seconds),
            latency_ms=latency_ms,
        )
