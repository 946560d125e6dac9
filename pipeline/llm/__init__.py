"""Talking to the LLM: prompts, request bodies, retries, errors and reply rendering.

``compose`` turns config, context and new messages into a ``Prompt`` (what
``LlmRequested`` records); ``build_request`` turns a prompt into a provider's
HTTP body (images as data URLs); ``LlmClient`` sends it with retries;
``Transcriber`` turns voice notes into text over the same retries,
``Synthesizer`` replies into speech;
``LlmPool`` keeps one client of each per endpoint in force.
"""

from pipeline.llm._attachments import DOCUMENT_CUT
from pipeline.llm._client import LlmClient, LlmPool
from pipeline.llm._errors import (
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
    ParamRefused,
    RateLimited,
    RequestTimeout,
    RunFailed,
    ServerError,
)
from pipeline.llm._http import OnFailure
from pipeline.llm._prompt import (
    CUT_MARKER,
    Prompt,
    Said,
    compose,
    composed_at,
    debug_note,
    group_context,
    pointed_at,
    same_system,
    system_text,
    user_text,
    user_turn,
)
from pipeline.llm._render import Formatting, format_reply, split_message, spoken_reply
from pipeline.llm._speech import Speech, Synthesizer
from pipeline.llm._transcribe import Transcriber, Transcript
from pipeline.llm._turns import normalize_turns, strip_think
from pipeline.llm._wire import (
    PROVIDERS,
    ImageUrl,
    LlmResult,
    ToolSpec,
    build_request,
    parse_response,
)

__all__ = [
    "CUT_MARKER",
    "DOCUMENT_CUT",
    "PROVIDERS",
    "BadRequest",
    "Conflict",
    "ConnectionFailed",
    "EndpointRetired",
    "Forbidden",
    "Formatting",
    "HttpError",
    "ImageUrl",
    "KeyRejected",
    "LlmClient",
    "LlmError",
    "LlmPool",
    "LlmResult",
    "MalformedResponse",
    "NotFound",
    "OnFailure",
    "ParamRefused",
    "Prompt",
    "RateLimited",
    "RequestTimeout",
    "RunFailed",
    "Said",
    "ServerError",
    "Speech",
    "Synthesizer",
    "ToolSpec",
    "Transcriber",
    "Transcript",
    "build_request",
    "compose",
    "composed_at",
    "debug_note",
    "format_reply",
    "group_context",
    "normalize_turns",
    "parse_response",
    "pointed_at",
    "same_system",
    "split_message",
    "spoken_reply",
    "strip_think",
    "system_text",
    "user_text",
    "user_turn",
]
