"""What every OpenAI-compatible audio endpoint client shares (transcription, speech).

One URL under ``base_url``, a bearer key or none (a local server), a timeout
with a short connect phase, and the LLM client's retries, backoff and errors
(``_http``); the HTTP client is shared or owned.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import httpx

from pipeline.llm._http import OnFailure, retrying
from pipeline.llm._in_flight import InFlight

_CONNECT_TIMEOUT = 5.0
SECONDS_PER_MINUTE = 60.0
_T = TypeVar("_T")


class AudioEndpoint:
    """A client of ``{base_url}/{path}`` with one model."""

    def __init__(
        self,
        path: str,
        *,
        base_url: str,
        api_key: str | None,
        model: str,
        timeout: float,
        max_retries: int,
        price_per_minute: float,
        http: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.model = model
        self._url = f"{base_url.rstrip('/')}/{path}"
        self._api_key = api_key
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, _CONNECT_TIMEOUT))
        self._max_retries = max(max_retries, 0)
        self._price = price_per_minute
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient()
        self._sleep = sleep
        self._jitter = jitter
        self.calls = InFlight()

    def _cost(self, seconds: float) -> float:
        """What ``seconds`` of audio cost at the configured price."""
        return round(seconds / SECONDS_PER_MINUTE * self._price, 6)

    async def _retrying(
        self, attempt: Callable[[], Awaitable[_T]], on_failure: OnFailure | None
    ) -> _T:
        with self.calls.one():
            return await retrying(
                attempt,
                max_retries=self._max_retries,
                on_failure=on_failure,
                sleep=self._sleep,
                jitter=self._jitter,
            )

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()
