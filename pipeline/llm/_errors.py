"""Why an LLM call failed, in one line a user can act on.

Every failure is an ``LlmError``; the subclass says what went wrong and
``retryable`` whether the same request may succeed later. Messages quote the
API's own explanation (one line, truncated) and never contain the API key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, ClassVar, NamedTuple

from events.model import Usage
from pipeline.llm._backoff import parse_retry_after
from pipeline.logs import redact

# Perplexity answers a retired Sonar path with HTTP 403 and one of these types;
# a valid key gets it too, so it must never read as "bad key".
_RETIRED_TYPES = frozenset({"chat_completions_not_available", "agent_api_migration_required"})
_MAX_DETAIL = 300
# OpenAI's wording when a model refuses a field or its value; proxies may pass
# on only the message, so the field is read from it when ``param`` is absent.
_REFUSED = re.compile(r"Unsupported (?:parameter|value): '(\w+)'", re.IGNORECASE)
# A server or model without function calling (Ollama's wording; vLLM started without
# --enable-auto-tool-choice): the request may go again without its tools.
_NO_TOOLS = re.compile(r"does not support tools|enable-auto-tool-choice", re.IGNORECASE)
# The app.json setting behind each request field a model may refuse, and what avoids it.
_SETTINGS = {
    "temperature": ("llm.temperature", "null"),
    "max_tokens": ("llm.max_output_tokens", "null"),
    "max_completion_tokens": ("llm.max_output_tokens", "null"),
    "max_output_tokens": ("llm.max_output_tokens", "null"),
    "tools": ("tools.silence", '"never"'),
}


class LlmError(Exception):
    """A failed LLM call; ``kind`` names the failure for events and logs."""

    kind: ClassVar[str] = "error"
    default_retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
        quoting: str = "",
        usage: Usage | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retryable = self.default_retryable if retryable is None else retryable
        self.retry_after = retry_after
        # The API's own words inside ``message``: an API or a proxy may echo the
        # request (the user's text) in them, so they go into the log's events only.
        self.quoting = quoting
        # What the provider billed for an answer it sent but that holds none the
        # bot can use (a ``RunFailed``): the spend counts it like an answer's.
        self.usage = usage

    def __str__(self) -> str:
        return self.message

    @property
    def loggable(self) -> str:
        """The message for the program's logs: without the API's own words."""
        if not self.quoting or self.quoting not in self.message:
            return self.message
        return self.message.replace(self.quoting, "(the API's words: see the event log)")


class BadRequest(LlmError):
    """The API refused the request body (HTTP 400/422) or it could not be built."""

    kind = "bad_request"


class ParamRefused(BadRequest):
    """HTTP 400/422 naming a field we sent that the model does not take (OpenAI's reasoning
    models: ``max_tokens``, a ``temperature`` but 1): the request may go again without it."""

    def __init__(self, message: str, *, field: str, hint: str, status: int) -> None:
        super().__init__(f"{message}: {hint}", status=status)
        self.field = field
        self.refusal = message  # without the hint: what the server said no to
        self.hint = hint  # the app.json setting that avoids it


class KeyRejected(LlmError):
    """HTTP 401: the API key is missing, wrong or revoked."""

    kind = "auth"


class EndpointRetired(LlmError):
    """HTTP 403 from Perplexity's retired Sonar chat-completions path."""

    kind = "endpoint_retired"


class Forbidden(LlmError):
    """HTTP 403 for any other reason (plan, region, model access)."""

    kind = "forbidden"


class NotFound(LlmError):
    """HTTP 404: wrong base_url/path or unknown model."""

    kind = "not_found"


class HttpError(LlmError):
    """Any other non-retryable HTTP status (402, 405, 413, ...)."""

    kind = "http"


class RequestTimeout(LlmError):
    """The server (HTTP 408) or the client timer gave up waiting."""

    kind = "timeout"
    default_retryable = True


class Conflict(LlmError):
    """HTTP 409: a transient conflict; Perplexity's SDK retries it."""

    kind = "conflict"
    default_retryable = True


class RateLimited(LlmError):
    """HTTP 429: too many requests for the account's tier."""

    kind = "rate_limited"
    default_retryable = True


class ServerError(LlmError):
    """HTTP 5xx: the provider or a proxy in front of it failed."""

    kind = "server"
    default_retryable = True


class ConnectionFailed(LlmError):
    """No HTTP answer at all: refused, reset or DNS failure."""

    kind = "connection"
    default_retryable = True


class RunFailed(LlmError):
    """HTTP 200 whose body says the run failed, was cancelled or produced no text."""

    kind = "run_failed"


class MalformedResponse(LlmError):
    """HTTP 200 whose body is not the JSON shape the provider documents."""

    kind = "malformed"


def one_line(text: str, limit: int = _MAX_DETAIL) -> str:
    """Collapse whitespace and cut ``text`` to ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def error_from_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    api_key: str | None,
    sent: Mapping[str, Any] | None = None,
) -> LlmError:
    """Classify a non-2xx HTTP answer into the matching ``LlmError``.

    ``sent`` is the request body; with it, a refused field we sent is worded
    as the app.json setting to change.
    """
    explained = _explain_body(body)
    err_type = explained.kind
    detail = redact(explained.message, api_key)
    suffix = f": {detail}" if detail else ""
    retry_after = parse_retry_after(headers, now)
    err: LlmError
    if status == 401:
        hint = "" if api_key else "; no API key is configured"
        err = KeyRejected(f"API key rejected (HTTP 401){hint}", status=status)
    elif status == 403 and err_type in _RETIRED_TYPES:
        err = EndpointRetired(
            f"Perplexity retired this endpoint (HTTP 403 {err_type}); "
            "use provider perplexity (Agent API /v1/responses)",
            status=status,
        )
    elif status == 403:
        err = Forbidden(f"forbidden (HTTP 403){suffix}", status=status)
    elif status == 404:
        err = NotFound(f"model or endpoint not found (HTTP 404){suffix}", status=status)
    elif status in (400, 422):
        err = _refused(status, explained, sent or {}) or BadRequest(
            f"bad request (HTTP {status}){suffix}", status=status
        )
    elif status == 408:
        err = RequestTimeout(f"server timed out (HTTP 408){suffix}", status=status)
    elif status == 409:
        err = Conflict(f"conflict (HTTP 409){suffix}", status=status)
    elif status == 429:
        err = RateLimited(f"rate limited (HTTP 429){suffix}", status=status)
    elif status >= 500:
        err = ServerError(f"server error (HTTP {status}){suffix}", status=status)
    else:
        err = HttpError(f"HTTP {status} {_phrase(status)}{suffix}", status=status)
    err.retry_after = retry_after
    err.quoting = detail
    # The SDK lets the server override the retry decision; so do we.
    should_retry = headers.get("x-should-retry")
    if should_retry in ("true", "false"):
        err.retryable = should_retry == "true"
    return err


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error"


class _Explained(NamedTuple):
    message: str
    kind: str = ""  # the error's code, else its type
    param: str = ""  # the request field it blames, if it names one


def _explain_body(body: bytes) -> _Explained:
    """The one-line message, kind and blamed field of any error body shape."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data: Any = json.loads(text)
    except ValueError:
        return _Explained(_explain_text(text))
    except RecursionError:  # a hostile or broken proxy; the status still classifies it
        return _Explained("error body is JSON nested too deeply to read")
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            message = str(error.get("message") or "")
            param = error.get("param")
            if not isinstance(param, str):
                refused = _REFUSED.search(message)
                param = refused.group(1) if refused else ""
            return _Explained(one_line(message), _error_kind(error), param)
        if isinstance(error, str):  # Ollama and llama.cpp send {"error": "..."}
            return _Explained(one_line(error))
        if "detail" in data:  # FastAPI validation (HTTP 422)
            return _Explained(one_line(_detail_text(data["detail"])))
    return _Explained(one_line(text))


def _refused(status: int, explained: _Explained, sent: Mapping[str, Any]) -> ParamRefused | None:
    """The model refused a field we sent (OpenAI's reasoning models: temperature,
    max_tokens; a server without function calling: tools), named with the app.json
    setting behind it; else None."""
    name = explained.param or ("tools" if _NO_TOOLS.search(explained.message) else "")
    found = _SETTINGS.get(name)
    if found is None or name not in sent:
        return None
    setting, avoided = found
    whole = (
        name == "tools"
        or explained.kind == "unsupported_parameter"
        or explained.message.lower().startswith("unsupported parameter")
    )
    what = f"the parameter {name}" if whole else f"{name} {json.dumps(sent[name])}"
    return ParamRefused(
        f"the model does not accept {what} (HTTP {status})",
        field=name,
        hint=f"set {setting} to {avoided} in app.json",
        status=status,
    )


def _error_kind(error: dict[str, Any]) -> str:
    """The most specific name the error gives itself.

    A string ``code`` is finer than ``type``: a retired Sonar path has been seen
    as type ``forbidden`` with code ``agent_api_migration_required``. Perplexity's
    own envelope repeats the HTTP status as an integer ``code``; then ``type`` names it.
    """
    code = error.get("code")
    if isinstance(code, str) and code:
        return code
    return str(error.get("type") or code or "")


def _detail_text(detail: Any) -> str:
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                where = ".".join(str(p) for p in item.get("loc", []))
                parts.append(f"{where}: {item.get('msg', '')}".strip(": "))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail)


def _explain_text(text: str) -> str:
    """Proxies answer in HTML; its <title> is the only useful part."""
    title = re.search(r"(?is)<title>(.*?)</title>", text)
    if title:
        return one_line(title.group(1))
    if text.lstrip().startswith("<"):
        return one_line(re.sub(r"<[^>]+>", " ", text))
    return one_line(text)
