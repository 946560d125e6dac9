"""One POST to an LLM-style HTTP API, and the retry loop around it.

Shared by chat completions and transcriptions: the same failures (timeouts,
refused connections, 4xx/5xx with the API's own explanation) become the same
``LlmError`` classes, retried with the same backoff (``_backoff``) and
reported after every attempt through ``on_failure``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import httpx

from events.dsn import hide, redacted
from pipeline.llm._backoff import backoff_delay
from pipeline.llm._errors import (
    BadRequest,
    ConnectionFailed,
    LlmError,
    RequestTimeout,
    error_from_response,
    one_line,
)

OnFailure = Callable[[LlmError, int, bool], Awaitable[None]]
_T = TypeVar("_T")


async def retrying(
    attempt: Callable[[], Awaitable[_T]],
    *,
    max_retries: int,
    on_failure: OnFailure | None,
    sleep: Callable[[float], Awaitable[None]],
    jitter: Callable[[], float],
) -> _T:
    """``attempt()`` until it succeeds, fails for good, or ``1 + max_retries`` tries are spent.

    After each failed attempt ``on_failure(error, attempt, final)`` is awaited
    (attempts count from 1); the last error is raised when final.
    """
    number = 1
    while True:
        try:
            return await attempt()
        except LlmError as err:
            final = number > max_retries or not err.retryable
            if on_failure is not None:
                await on_failure(err, number, final)
            if final:
                raise
            await sleep(backoff_delay(number - 1, err.retry_after, jitter()))
            number += 1


async def post(
    http: httpx.AsyncClient,
    url: str,
    *,
    what: str,
    api_key: str | None,
    timeout: httpx.Timeout,
    sent: Mapping[str, Any] | None = None,
    **request: Any,
) -> tuple[httpx.Response, float]:
    """The 2xx response to a POST and its latency in ms; any failure as an ``LlmError``.

    ``what`` names the service in errors ("LLM", "transcription"); ``sent`` is
    the request body, for naming a refused setting; ``request`` goes to httpx.
    An error names ``url`` without its password (``user:***@``, an authenticating
    proxy's): it is recorded (``LlmFailed``) and logged.
    """
    headers = {"accept": "application/json", **request.pop("headers", {})}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    started = time.perf_counter()
    try:
        response = await http.post(_parsed(url), headers=headers, timeout=timeout, **request)
    except httpx.TimeoutException as exc:
        raise RequestTimeout(f"no answer from {redacted(url)} ({_describe(exc, url)})") from None
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise BadRequest(f"invalid {what} base_url: {hide(one_line(str(exc)), url)}") from None
    except httpx.TransportError as exc:
        raise ConnectionFailed(f"cannot reach {redacted(url)}: {_describe(exc, url)}") from None
    latency_ms = (time.perf_counter() - started) * 1000.0
    if not response.is_success:
        raise error_from_response(
            response.status_code,
            response.headers,
            response.content,
            now=time.time(),
            api_key=api_key,
            sent=sent,
        )
    return response, latency_ms


@functools.lru_cache(maxsize=64)
def _parsed(url: str) -> httpx.URL:
    """``url`` parsed once: httpx parses a string again on every request (about a
    fifth of its own work per call), and a daemon posts to one or two URLs.
    Raises ``httpx.InvalidURL``, which is not cached."""
    return httpx.URL(url)


def _describe(exc: httpx.HTTPError, url: str) -> str:
    # httpx timeouts often carry an empty message; the class name still says which phase.
    text = hide(one_line(str(exc), 160), url)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
