"""What goes over the wire for each provider: request bodies and response parsing.

Pure functions. ``build_request`` is deterministic so replay can rebuild the
exact bytes from a recorded ``LlmRequested``. Parsing decodes into msgspec
Structs, so a body of the wrong shape becomes ``MalformedResponse``, not a crash.

- ``perplexity``: the Agent API, ``POST /v1/responses``. It rejects unknown
  fields, so the body carries only what docs/llm.md lists.
- ``openai``: ``POST /chat/completions`` (OpenAI, Ollama, vLLM, llama.cpp, and
  Perplexity's legacy shape with ``citations``/``search_results``). The
  ``max_output_tokens`` param goes out as ``max_completion_tokens`` to OpenAI's
  own API and as ``max_tokens`` everywhere else (``token_limit_name``).

A turn with images goes out as content parts (docs/llm.md, "Images"): the text,
then each image as a data URL, ``input_text``/``input_image`` for the Agent
API, ``text``/``image_url`` for chat completions.

Function tools (docs/llm.md, "Tools") go out in each provider's shape; the
turn's earlier rounds of calls follow the turns: ``function_call`` and
``function_call_output`` items for the Agent API, an assistant message with
``tool_calls`` and ``role: "tool"`` messages for chat completions. A model's
calls come back as ``LlmResult.tool_calls``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import msgspec

from events.model import ChatTurn, Citation, ImageRef, ToolCall, ToolRound, Usage
from pipeline.llm._errors import MalformedResponse, RunFailed, one_line
from pipeline.llm._turns import normalize_turns, strip_think

PROVIDERS = ("perplexity", "openai")
# ``refused``: the request fields this model at this URL answered 400 to (learned; see
# ``LlmClient``): they go out renamed (the output cap) or not at all.
PARAM_KEYS = frozenset({"temperature", "max_output_tokens", "web_search", "refused"})
_CAPS = ("max_completion_tokens", "max_tokens")
# The run stopped at the token limit before any text; the owner can fix that.
NO_TEXT_AT_LIMIT = (
    "the LLM used up its token limit before writing any text: "
    "raise llm.max_output_tokens in app.json"
)

_T = TypeVar("_T")
ImageUrl = Callable[[ImageRef], str]
# A function tool as offered: {"name", "description", "parameters" (a JSON schema)}.
ToolSpec = dict[str, Any]


class LlmResult(msgspec.Struct, frozen=True, kw_only=True):
    """A successful answer; ``content`` has any ``<think>`` block removed."""

    content: str
    citations: list[Citation]
    usage: Usage
    finish_reason: str
    latency_ms: float = 0.0
    response_id: str = ""
    tool_calls: list[ToolCall] = []  # the model called tools instead of (or with) answering


def build_request(
    provider: str,
    base_url: str,
    model: str,
    messages: list[ChatTurn],
    params: dict[str, Any],
    *,
    images: ImageUrl | None = None,
    tools: Sequence[ToolSpec] = (),
    rounds: Sequence[ToolRound] = (),
) -> tuple[str, dict[str, Any]]:
    """Return (url, JSON body) for one completion; turns are normalised first.

    ``params`` may hold ``temperature``, ``max_output_tokens`` and
    ``web_search``; a missing or None value leaves the field out. ``images``
    gives the data URL of an image a turn carries. ``tools`` are the function
    tools offered, ``rounds`` the turn's earlier calls and their outputs. Raises
    ValueError for an unknown provider or param, when there is no user turn, or
    for images without ``images``; OSError when an image's file cannot be read.
    """
    unknown = sorted(set(params) - PARAM_KEYS)
    if unknown:
        raise ValueError(f"unknown LLM params: {', '.join(unknown)}")
    turns = normalize_turns(messages)
    base = base_url.rstrip("/")
    if provider == "perplexity":
        # Accept the OpenAI-SDK style base ".../v1" as well as the bare host.
        base = base.removesuffix("/v1")
        body = _agent_body(model, turns, params, images)
        _agent_tools(body, tools, rounds)
        return f"{base}/v1/responses", _without(body, params)
    if provider == "openai":
        limit_name = _cap_name(token_limit_name(base), params)
        body = _chat_body(model, turns, params, limit_name, images)
        _chat_tools(body, tools, rounds)
        return f"{base}/chat/completions", _without(body, params)
    raise ValueError(f"unknown LLM provider {provider!r} (expected one of {', '.join(PROVIDERS)})")


def _agent_body(
    model: str, turns: list[ChatTurn], params: dict[str, Any], images: ImageUrl | None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "input": [
            {"role": t.role, "content": _content(t, "agent", images)}
            for t in turns
            if t.role != "system"
        ],
    }
    if turns[0].role == "system":
        body["instructions"] = turns[0].content
    if params.get("web_search"):
        body["tools"] = [{"type": "web_search"}]
    _put(body, "max_output_tokens", params.get("max_output_tokens"))
    _put(body, "temperature", params.get("temperature"))
    return body


def _agent_tools(
    body: dict[str, Any], tools: Sequence[ToolSpec], rounds: Sequence[ToolRound]
) -> None:
    """Agent API: ``{"type": "function", name, description, parameters}`` tools; each
    earlier round as ``function_call`` items, then their ``function_call_output`` items."""
    if tools:
        body["tools"] = [*body.get("tools", []), *({"type": "function", **t} for t in tools)]
    for done in rounds:
        body["input"].extend(
            {"type": "function_call", "call_id": c.id, "name": c.name, "arguments": c.arguments}
            for c in done.calls
        )
        body["input"].extend(
            {"type": "function_call_output", "call_id": c.id, "output": output}
            for c, output in zip(done.calls, done.outputs, strict=True)
        )


def _chat_tools(
    body: dict[str, Any], tools: Sequence[ToolSpec], rounds: Sequence[ToolRound]
) -> None:
    """Chat completions: ``{"type": "function", "function": {…}}`` tools; each earlier
    round as the assistant's message with ``tool_calls``, then a ``tool`` message per call."""
    if tools:
        body["tools"] = [{"type": "function", "function": dict(t)} for t in tools]
    for done in rounds:
        calls = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in done.calls
        ]
        body["messages"].append(
            {"role": "assistant", "content": done.content or None, "tool_calls": calls}
        )
        body["messages"].extend(
            {"role": "tool", "tool_call_id": c.id, "content": output}
            for c, output in zip(done.calls, done.outputs, strict=True)
        )


def token_limit_name(base_url: str) -> str:
    """The chat-completions field for the output cap at ``base_url``.

    OpenAI's own API (and Azure's copy of it) deprecated ``max_tokens`` and its
    reasoning models refuse it; Ollama and LM Studio know nothing but
    ``max_tokens``, which vLLM, llama.cpp and OpenRouter take too.
    """
    host = urlsplit(base_url).hostname or ""
    if host == "api.openai.com" or host.endswith(".openai.azure.com"):
        return "max_completion_tokens"
    return "max_tokens"


def _cap_name(preferred: str, params: dict[str, Any]) -> str:
    """The output cap's field: the one the URL suggests, else the other if that was refused."""
    refused = params.get("refused") or ()
    return next((name for name in (preferred, *_CAPS) if name not in refused), preferred)


def _without(body: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """``body`` less every field the model refused before."""
    for name in params.get("refused") or ():
        body.pop(name, None)
    return body


def reshaped(params: dict[str, Any], field: str) -> dict[str, Any] | None:
    """``params`` for a model that refused ``field``; None when it had refused it already."""
    refused = list(params.get("refused") or ())
    if field in refused:
        return None
    return {**params, "refused": sorted([*refused, field])}


def reshape_words(params: dict[str, Any], field: str) -> str:
    """What asking again after a refusal of ``field`` changes, in words."""
    refused = params.get("refused") or ()
    other = next((c for c in _CAPS if c not in (field, *refused)), None)
    if field in _CAPS and other is not None:
        return f"sent again with {other} instead of {field}"
    return f"sent again without {field}"


def _chat_body(
    model: str,
    turns: list[ChatTurn],
    params: dict[str, Any],
    limit_name: str,
    images: ImageUrl | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": t.role, "content": _content(t, "chat", images)} for t in turns],
    }
    _put(body, "temperature", params.get("temperature"))
    _put(body, limit_name, params.get("max_output_tokens"))
    return body


def _content(turn: ChatTurn, shape: str, images: ImageUrl | None) -> str | list[dict[str, Any]]:
    """A turn's content: its text, or content parts when it carries images."""
    if not turn.images:
        return turn.content
    if images is None:
        raise ValueError("a turn carries images, but no media store was given to read them")
    urls = [images(image) for image in turn.images]
    if shape == "agent":
        return [
            {"type": "input_text", "text": turn.content},
            *({"type": "input_image", "image_url": url} for url in urls),
        ]
    return [
        {"type": "text", "text": turn.content},
        *({"type": "image_url", "image_url": {"url": url}} for url in urls),
    ]


def _put(body: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        body[key] = value


# Response shapes: only the fields we read. Unknown fields are ignored and
# nullable ones default, because every backend adds or omits a few.


class _Cost(msgspec.Struct):
    total_cost: float | None = None


class _Source(msgspec.Struct):
    url: str | None = None
    title: str | None = None


class _Part(msgspec.Struct):
    type: str = ""
    text: str | None = None


class _OutputItem(msgspec.Struct):
    type: str = ""
    content: list[_Part] | None = None
    results: list[_Source] | None = None
    # A ``function_call`` item.
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None


class _AgentUsage(msgspec.Struct):
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int | None = None
    cost: _Cost | float | None = None


class _Problem(msgspec.Struct):
    message: str | None = None
    code: str | int | None = None


class _Incomplete(msgspec.Struct):
    reason: str | None = None


class _AgentResponse(msgspec.Struct):
    id: str | None = None
    status: str | None = None
    output: list[_OutputItem] | None = None
    usage: _AgentUsage | None = None
    error: _Problem | None = None
    incomplete_details: _Incomplete | None = None


class _Function(msgspec.Struct):
    name: str
    arguments: str = ""


class _ChatToolCall(msgspec.Struct):
    id: str
    function: _Function
    type: str = "function"


class _ChatMessage(msgspec.Struct):
    content: str | None = None
    tool_calls: list[_ChatToolCall] | None = None


class _Choice(msgspec.Struct):
    message: _ChatMessage | None = None
    finish_reason: str | None = None


class _ChatUsage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int | None = None
    cost: _Cost | float | None = None


class _ChatResponse(msgspec.Struct):
    id: str | None = None
    choices: list[_Choice] | None = None
    usage: _ChatUsage | None = None
    citations: list[str] | None = None
    search_results: list[_Source] | None = None
    error: _Problem | str | None = None


def parse_response(provider: str, body: bytes) -> LlmResult:
    """Decode a 2xx body; raise RunFailed or MalformedResponse when it holds no answer."""
    if provider == "perplexity":
        return _parse_agent(decode_answer(body, _AgentResponse))
    return _parse_chat(decode_answer(body, _ChatResponse))


def decode_answer(body: bytes, shape: type[_T], what: str = "LLM response") -> _T:
    """A 2xx body as ``shape``; anything else is ``MalformedResponse`` naming ``what``."""
    try:
        return msgspec.json.decode(body, type=shape)
    except msgspec.ValidationError as exc:
        raise MalformedResponse(f"malformed {what}: {one_line(str(exc))}") from None
    except msgspec.DecodeError:
        start = repr(one_line(body.decode("utf-8", errors="replace"), 80))
        raise MalformedResponse(f"malformed {what}: not JSON: {start}", quoting=start) from None
    except RecursionError:
        # msgspec recurses even through fields it skips; no real answer nests this deep.
        raise MalformedResponse(f"malformed {what}: JSON nested too deeply") from None


def _parse_agent(resp: _AgentResponse) -> LlmResult:
    status = resp.status or "completed"
    # Reported even when the run gave nothing usable: a failed run may be billed.
    billed = _agent_usage(resp.usage) if resp.usage is not None else None
    if status in ("failed", "cancelled"):
        why = one_line(resp.error.message) if resp.error and resp.error.message else ""
        raise RunFailed(
            f"the LLM run {status}: {why or 'no reason given'}", quoting=why, usage=billed
        )
    output = resp.output or []
    texts = [
        part.text or ""
        for item in output
        if item.type == "message"
        for part in item.content or []
        if part.type == "output_text"
    ]
    calls = [
        ToolCall(id=item.call_id or "", name=item.name or "", arguments=item.arguments or "")
        for item in output
        if item.type == "function_call"
    ]
    finish = "stop"
    if calls and status != "incomplete":
        finish = "tool_calls"
    elif status == "incomplete":
        reason = resp.incomplete_details.reason if resp.incomplete_details else None
        finish = "length" if reason in (None, "max_output_tokens") else reason
        if not texts and not calls:
            if finish == "length":
                raise RunFailed(NO_TEXT_AT_LIMIT, usage=billed)
            raise RunFailed(f"the LLM run stopped before writing any text ({finish})", usage=billed)
    elif not calls and not any(item.type == "message" for item in output):
        raise MalformedResponse("malformed LLM response: no message item in output")
    sources = [s for item in output if item.type == "search_results" for s in item.results or []]
    return LlmResult(
        content=strip_think("".join(texts)),
        citations=[Citation(url=s.url, title=s.title or "") for s in sources if s.url],
        usage=_agent_usage(resp.usage or _AgentUsage()),
        finish_reason=finish,
        response_id=resp.id or "",
        tool_calls=calls,
    )


def _agent_usage(usage: _AgentUsage) -> Usage:
    return _usage(usage.input_tokens, usage.output_tokens, usage.total_tokens, usage.cost)


def _parse_chat(resp: _ChatResponse) -> LlmResult:
    # Reported even when the answer holds nothing usable: a failed run may be billed.
    billed = _chat_usage(resp.usage) if resp.usage is not None else None
    if not resp.choices:
        if resp.error is not None:
            said = resp.error if isinstance(resp.error, str) else resp.error.message
            why = one_line(said) if said else ""
            raise RunFailed(
                f"the LLM run failed: {why or 'no reason given'}", quoting=why, usage=billed
            )
        raise MalformedResponse("malformed LLM response: no choices")
    choice = resp.choices[0]
    message = choice.message
    calls = [
        ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments)
        for c in (message.tool_calls or [] if message is not None else [])
    ]
    if message is None or (message.content is None and not calls):
        raise MalformedResponse("malformed LLM response: choices[0].message.content is missing")
    content = strip_think(message.content or "")
    if not content.strip() and choice.finish_reason == "length":
        # A reasoning model spent the limit thinking: billed, but nothing to send.
        raise RunFailed(NO_TEXT_AT_LIMIT, usage=billed)
    titles = {s.url: s.title or "" for s in resp.search_results or [] if s.url}
    # Inline [n] markers index ``citations`` when present; titles live in search_results.
    urls = resp.citations if resp.citations is not None else list(titles)
    return LlmResult(
        content=content,
        citations=[Citation(url=u, title=titles.get(u, "")) for u in urls if u],
        usage=_chat_usage(resp.usage or _ChatUsage()),
        finish_reason=choice.finish_reason or ("tool_calls" if calls else "stop"),
        response_id=resp.id or "",
        tool_calls=calls,
    )


def _chat_usage(usage: _ChatUsage) -> Usage:
    return _usage(usage.prompt_tokens, usage.completion_tokens, usage.total_tokens, usage.cost)


def _usage(inp: int, out: int, total: int | None, cost: _Cost | float | None) -> Usage:
    # OpenRouter reports cost as a bare number; Perplexity as an object.
    usd = cost.total_cost if isinstance(cost, _Cost) else cost
    return Usage(
        input_tokens=inp,
        output_tokens=out,
        total_tokens=inp + out if total is None else total,
        cost_usd=usd,
    )
