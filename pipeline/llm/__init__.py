"""Talking to the LLM: request bodies, retries, errors and reply rendering."""

from pipeline.llm.client import LlmClient, OnFailure
from pipeline.llm.errors import (
    BadRequest,
    Conflict,
    ConnectionFailed,
    EndpointRetired,
    Forbidden,
    HttpError,
    KeyRejected,
    LlmError,
    MalformedResponse,
    NotFound,
    RateLimited,
    RequestTimeout,
    RunFailed,
    ServerError,
)
from pipeline.llm.render import format_reply
from pipeline.llm.turns import normalize_turns, strip_think
from pipeline.llm.wire import PROVIDERS, LlmResult, build_request, parse_response

__all__ = [
    "PROVIDERS",
    "BadRequest",
    "Conflict",
    "ConnectionFailed",
    "EndpointRetired",
    "Forbidden",
    "HttpError",
    "KeyRejected",
    "LlmClient",
    "LlmError",
    "LlmResult",
    "MalformedResponse",
    "NotFound",
    "OnFailure",
    "RateLimited",
    "RequestTimeout",
    "RunFailed",
    "ServerError",
    "build_request",
    "format_reply",
    "normalize_turns",
    "parse_response",
    "strip_think",
]
