"""The async LLM client: one completion, retried with backoff, every failure reported.

``LlmPool`` keeps one client per endpoint in force, so a config reload that
leaves the LLM alone keeps its connections.

Transport (``http``), ``sleep`` and ``jitter`` are injected so tests drive a
real local server without waiting out real backoff delays.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Self

import anyio
import httpx
import msgspec

from events.model import ChatTurn
from pipeline.config import LoadedConfig
from pipeline.llm._backoff import backoff_delay
from pipeline.llm._errors import (
    BadRequest,
    ConnectionFailed,
    LlmError,
    RequestTimeout,
    error_from_response,
    one_line,
    redact,
)
from pipeline.llm._wire import PROVIDERS, LlmResult, build_request, parse_response

OnFailure = Callable[[LlmError, int, bool], Awaitable[None]]

# Connecting is quick or broken; only reading waits for the model.
_CONNECT_TIMEOUT = 5.0


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
    ) -> None:
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

    async def complete(
        self,
        model: str,
        messages: list[ChatTurn],
        params: dict[str, Any],
        *,
        on_failure: OnFailure | None = None,
    ) -> LlmResult:
        """Return the answer, trying up to ``1 + max_retries`` times.

        After each failed attempt ``on_failure(error, attempt, final)`` is
        awaited (attempts count from 1); the last error is raised when final.
        """
        try:
            url, body = build_request(self._provider, self._base_url, model, messages, params)
        except ValueError as exc:
            error = BadRequest(f"cannot build LLM request: {exc}")
            if on_failure is not None:
                await on_failure(error, 1, True)
            raise error from None
        payload = msgspec.json.encode(body)
        attempt = 1
        while True:
            try:
                return await self._attempt(url, payload, body)
            except LlmError as err:
                final = attempt > self._max_retries or not err.retryable
                if on_failure is not None:
                    await on_failure(err, attempt, final)
                if final:
                    raise
                await self._sleep(backoff_delay(attempt - 1, err.retry_after, self._jitter()))
                attempt += 1

    async def _attempt(self, url: str, payload: bytes, body: dict[str, Any]) -> LlmResult:
        headers = {"content-type": "application/json", "accept": "application/json"}
        if self._api_key:
            headers["authorization"] = f"Bearer {self._api_key}"
        started = time.perf_counter()
        try:
            response = await self._http.post(
                url, content=payload, headers=headers, timeout=self._timeout
            )
        except httpx.TimeoutException as exc:
            raise RequestTimeout(f"no answer from {url} ({_describe(exc)})") from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise BadRequest(f"invalid LLM base_url: {one_line(str(exc))}") from None
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"cannot reach {url}: {_describe(exc)}") from None
        latency_ms = (time.perf_counter() - started) * 1000.0
        if not response.is_success:
            raise error_from_response(
                response.status_code,
                response.headers,
                response.content,
                now=time.time(),
                api_key=self._api_key,
                sent=body,
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


def _describe(exc: httpx.HTTPError) -> str:
    # httpx timeouts often carry an empty message; the class name still says which phase.
    text = one_line(str(exc), 160)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class LlmPool:
    """Hands out the client for a config; replaced clients close only at ``aclose``."""

    def __init__(self) -> None:
        self._client: LlmClient | None = None
        self._settings: object = None
        self._retired: list[LlmClient] = []  # a call may still be using one

    def client(self, loaded: LoadedConfig) -> LlmClient:
        llm = loaded.config.llm
        key = loaded.secrets.api_key
        settings = (llm.provider, llm.base_url, key, llm.timeout_seconds, llm.max_retries)
        if self._client is None or settings != self._settings:
            if self._client is not None:
                self._retired.append(self._client)
            self._client = LlmClient(
                provider=llm.provider,
                base_url=llm.base_url,
                api_key=key,
                timeout=llm.timeout_seconds,
                max_retries=llm.max_retries,
            )
            self._settings = settings
        return self._client

    async def aclose(self) -> None:
        clients = [*self._retired, *([self._client] if self._client else [])]
        self._retired, self._client = [], None
        for client in clients:
            await client.aclose()
