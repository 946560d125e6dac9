"""The async LLM client: one completion, retried with backoff, every failure reported.

``LlmPool`` keeps one client per endpoint in force, so a config reload that
leaves the LLM alone keeps its connections; one that changes it retires the
old client, closed once its last call is done.

Transport (``http``), ``sleep`` and ``jitter`` are injected so tests drive a
real local server without waiting out real backoff delays.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

import anyio
import anyio.abc
import httpx
import msgspec

from events.model import ChatTurn, ToolRound
from pipeline.config import AudioService, LoadedConfig
from pipeline.llm._audio import AudioEndpoint
from pipeline.llm._errors import BadRequest, LlmError, ParamRefused
from pipeline.llm._http import OnFailure, post, retrying
from pipeline.llm._in_flight import InFlight
from pipeline.llm._speech import Synthesizer
from pipeline.llm._transcribe import Transcriber
from pipeline.llm._wire import (
    PROVIDERS,
    ImageUrl,
    LlmResult,
    ToolSpec,
    build_request,
    parse_response,
    reshape_words,
    reshaped,
)
from pipeline.logs import redact

# Connecting is quick or broken; only reading waits for the model.
_CONNECT_TIMEOUT = 5.0
_C = TypeVar("_C", "LlmClient", Transcriber, Synthesizer)


@dataclass(frozen=True, slots=True)
class _Shape:
    """What a request carries besides the model and params."""

    messages: list[ChatTurn]
    tools: tuple[ToolSpec, ...]
    rounds: tuple[ToolRound, ...]


class LlmClient:
    """Sends completions to one provider at one base URL."""

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        api_key: str | None,
        timeout: float,
        max_retries: int,
        http: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        jitter: Callable[[], float] = random.random,
        images: ImageUrl | None = None,
        refusals: dict[str, set[str]] | None = None,
    ) -> None:
        """``images`` turns an image sent with a turn into the data URL that goes out;
        ``refusals`` (model -> fields it refused here) outlives the client in ``LlmPool``."""
        if provider not in PROVIDERS:
            raise ValueError(
                f"unknown LLM provider {provider!r} (expected one of {', '.join(PROVIDERS)})"
            )
        self._provider = provider
        self._base_url = base_url
        self._api_key = api_key
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, _CONNECT_TIMEOUT))
        self._max_retries = max(max_retries, 0)
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient()
        self._sleep = sleep
        self._jitter = jitter
        self._images = images
        self._refusals: dict[str, set[str]] = {} if refusals is None else refusals
        self.calls = InFlight()

    def learned(self, model: str, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` as this URL's ``model`` takes them: with the fields it refused before,
        so the call the log records is the one that goes out."""
        refused = sorted(self._refusals.get(model, ()))
        return {**params, "refused": refused} if refused else params

    async def complete(
        self,
        model: str,
        messages: list[ChatTurn],
        params: dict[str, Any],
        *,
        on_failure: OnFailure | None = None,
        tools: Sequence[ToolSpec] = (),
        rounds: Sequence[ToolRound] = (),
    ) -> LlmResult:
        """Return the answer, trying up to ``1 + max_retries`` times.

        After each failed attempt ``on_failure(error, attempt, final)`` is
        awaited (attempts count from 1); the last error is raised when final.
        A model that refuses a field we sent (``ParamRefused``) is asked again at
        once without it, once per field, and the refusal is remembered for later
        calls (``learned``): behind a proxy, the host name cannot tell which
        output cap a GPT-5 model takes. ``tools`` and ``rounds``: the function
        tools offered and the turn's earlier calls (docs/llm.md, "Tools").
        """
        shape = _Shape(messages, tuple(tools), tuple(rounds))
        with self.calls.one():
            while True:
                try:
                    return await self._complete(model, shape, params, on_failure)
                except ParamRefused as refused:
                    again = reshaped(params, refused.field)
                    if again is None:
                        raise
                    self._refusals.setdefault(model, set()).add(refused.field)
                    params = again

    async def _complete(
        self,
        model: str,
        shape: _Shape,
        params: dict[str, Any],
        on_failure: OnFailure | None,
    ) -> LlmResult:
        try:
            url, body = build_request(
                self._provider,
                self._base_url,
                model,
                shape.messages,
                params,
                images=self._images,
                tools=shape.tools,
                rounds=shape.rounds,
            )
        except (ValueError, OSError) as exc:  # OSError: an image's file is gone
            error = BadRequest(f"cannot build LLM request: {exc}")
            if on_failure is not None:
                await on_failure(error, 1, True)
            raise error from None
        payload = msgspec.json.encode(body)

        async def report(error: LlmError, attempt: int, final: bool) -> None:
            if isinstance(error, ParamRefused) and reshaped(params, error.field) is not None:
                # Not final: the same call goes out again at once, in the shape the model takes.
                error.message = f"{error.refusal}: {reshape_words(params, error.field)}"
                final = False
            if on_failure is not None:
                await on_failure(error, attempt, final)

        return await retrying(
            lambda: self._attempt(url, payload, body),
            max_retries=self._max_retries,
            on_failure=report,
            sleep=self._sleep,
            jitter=self._jitter,
        )

    async def _attempt(self, url: str, payload: bytes, body: dict[str, Any]) -> LlmResult:
        response, latency_ms = await post(
            self._http,
            url,
            what="LLM",
            api_key=self._api_key,
            timeout=self._timeout,
            sent=body,
            content=payload,
            headers={"content-type": "application/json"},
        )
        try:
            result = parse_response(self._provider, response.content)
        except LlmError as err:
            err.status = response.status_code
            err.message = redact(err.message, self._api_key)
            raise
        return msgspec.structs.replace(result, latency_ms=latency_ms)

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class LlmPool:
    """Hands out the clients for a config. While ``run`` runs, a client a reload replaced
    closes (with its connections) once no call uses it; the rest close at ``aclose``."""

    def __init__(self, images: ImageUrl | None = None) -> None:
        self._images = images
        self._current: dict[str, tuple[object, Any]] = {}  # what -> (settings, client)
        self._retired: set[LlmClient | AudioEndpoint] = set()  # replaced, not yet closed
        self._closer: anyio.abc.TaskGroup | None = None  # run's
        # (provider, base_url) -> model -> fields it refused: kept for the process, across
        # clients a reload replaces (a new timeout is the same server).
        self._refusals: dict[tuple[str, str], dict[str, set[str]]] = {}

    def client(self, loaded: LoadedConfig) -> LlmClient:
        llm = loaded.config.llm
        key = loaded.secrets.api_key
        settings = (llm.provider, llm.base_url, key, llm.timeout_seconds, llm.max_retries)
        return self._held(
            "llm",
            settings,
            lambda: LlmClient(
                provider=llm.provider,
                base_url=llm.base_url,
                api_key=key,
                timeout=llm.timeout_seconds,
                max_retries=llm.max_retries,
                images=self._images,
                refusals=self._refusals.setdefault((llm.provider, llm.base_url), {}),
            ),
        )

    def transcriber(self, loaded: LoadedConfig) -> Transcriber:
        heard = loaded.config.media.transcription
        key = loaded.secrets.transcription_key
        return self._held(
            "transcription",
            (heard, key),
            lambda: Transcriber(language=heard.language, **_endpoint(heard, key)),
        )

    def synthesizer(self, loaded: LoadedConfig) -> Synthesizer:
        spoken = loaded.config.voice_replies
        key = loaded.secrets.speech_key
        return self._held("speech", (spoken, key), lambda: Synthesizer(**_endpoint(spoken, key)))

    def _held(self, what: str, settings: object, make: Callable[[], _C]) -> _C:
        held = self._current.get(what)
        if held is None or held[0] != settings:
            if held is not None:
                self._retire(held[1])
            held = self._current[what] = (settings, make())
        client: _C = held[1]
        return client

    def _retire(self, client: LlmClient | AudioEndpoint) -> None:
        self._retired.add(client)
        if self._closer is not None:
            self._closer.start_soon(self._close_when_idle, client)

    async def run(self) -> None:
        """Close the clients reloads replace, each once its last call is done; until cancelled."""
        async with anyio.create_task_group() as tg:
            for client in self._retired:  # replaced before this started
                tg.start_soon(self._close_when_idle, client)
            self._closer = tg
            try:
                await anyio.sleep_forever()
            finally:
                self._closer = None

    async def _close_when_idle(self, client: LlmClient | AudioEndpoint) -> None:
        # A call in flight finishes on the connections it has; none starts after retiring:
        # callers take a client from the pool for each call.
        await client.calls.idle()
        await client.aclose()
        self._retired.discard(client)

    async def aclose(self) -> None:
        clients = [*self._retired, *(client for _, client in self._current.values())]
        self._retired, self._current = set(), {}
        for client in clients:
            await client.aclose()


def _endpoint(service: AudioService, key: str | None) -> dict[str, Any]:
    """An audio endpoint client's settings from its app.json section."""
    return {
        "base_url": service.base_url,
        "api_key": key,
        "model": service.model,
        "timeout": service.timeout_seconds,
        "max_retries": service.max_retries,
        "price_per_minute": service.price_per_minute_usd,
    }
