"""What the fake LLM provider sends: answers and error bodies in the real shapes.

Every Agent API answer here is checked against Perplexity's SDK models in
tests/test_llm_sdk_fidelity.py; tests/llm_server.py serves them.
"""

from __future__ import annotations

import hashlib
import json
from http import HTTPStatus
from typing import Any

SEARCH_RESULTS = (
    {"url": "https://www.example.com/news/echo", "title": "Echo news"},
    {"url": "https://docs.example.org/guide", "title": "The echo guide"},
)
# What the fake reasoning model spends thinking before it writes (counted in
# max_completion_tokens, as OpenAI counts reasoning tokens).
REASONING_TOKENS = 64
RETIRED = "Sonar is now the Agent API. Use /v1/responses instead of /v1/sonar."


def html_page(status: int) -> bytes:
    """The bare nginx/openresty page proxies send instead of JSON."""
    title = f"{status} {'Authorization Required' if status == 401 else HTTPStatus(status).phrase}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>openresty/1.25.3.1</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()


def error_body(status: int, message: str, kind: str) -> dict[str, Any]:
    """Perplexity's error envelope."""
    return {"error": {"message": message, "type": kind, "code": status}}


def openai_error(message: str, param: str | None, code: str) -> dict[str, Any]:
    """OpenAI's error envelope: ``code`` is a string and ``param`` names the field."""
    return {
        "error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    }


_CANNED_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad request", "invalid_request_error"),
    403: ("Forbidden", "forbidden"),
    404: ("model is not supported", "invalid_model"),
    429: ("Rate limit exceeded. Please retry later.", "request_rate_limit_exceeded"),
    500: ("Internal server error", "internal_error"),
    503: ("Service temporarily unavailable", "service_unavailable"),
    504: ("Gateway timeout", "gateway_timeout"),
}


def canned_error(status: int) -> bytes:
    """A realistic error body for ``status`` (502 and 401 come from the proxy, as HTML)."""
    if status in (401, 502):
        return html_page(status)
    message, kind = _CANNED_ERRORS.get(status, (HTTPStatus(status).phrase, "error"))
    return json.dumps(error_body(status, message, kind)).encode()


def _words(text: str) -> int:
    return len(text.split())


def content_text(content: Any) -> str:
    """The text of a turn's content: a string, or the text parts of a content-part list."""
    if isinstance(content, list):
        return "\n".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") in ("text", "input_text")
        )
    return str(content)


def _last_user_text(items: list[dict[str, Any]]) -> str:
    users = [content_text(item.get("content", "")) for item in items if item.get("role") == "user"]
    return users[-1] if users else ""


def _request_id(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def agent_answer(body: dict[str, Any], text: str | None = None) -> dict[str, Any]:
    """The default Agent API answer: "Echo: <last user text>" (or ``text``), with two
    search results and total_cost 0.0061 when the web_search tool is on (else 0.0011)."""
    items = (
        body["input"]
        if isinstance(body["input"], list)
        else [{"role": "user", "content": body["input"]}]
    )
    if text is None:
        text = f"Echo: {_last_user_text(items)}"
    search = any(tool.get("type") == "web_search" for tool in body.get("tools", []))
    prompt = " ".join(
        [str(body.get("instructions", ""))] + [content_text(i.get("content", "")) for i in items]
    )
    output: list[dict[str, Any]] = []
    if search:
        results = [
            {"id": n, **r, "snippet": "…", "source": "web"}
            for n, r in enumerate(SEARCH_RESULTS, start=1)
        ]
        output.append({"type": "search_results", "queries": [text[6:]], "results": results})
    output.append(
        {
            "type": "message",
            "id": "msg_" + _request_id(body),
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }
    )
    inp, out = _words(prompt), _words(text)
    tool_cost = 0.005 if search else 0.0
    return {
        "id": "resp_" + _request_id(body),
        "object": "response",
        "created_at": 1760000000,
        "status": "completed",
        "model": body.get("model") or "perplexity/sonar",
        "output": output,
        "usage": {
            "input_tokens": inp,
            "output_tokens": out,
            "total_tokens": inp + out,
            **({"tool_calls_details": {"search_web": {"invocation": 1}}} if search else {}),
            "cost": {
                "currency": "USD",
                "input_cost": 0.0006,
                "output_cost": 0.0005,
                "tool_calls_cost": tool_cost,
                "total_cost": round(0.0011 + tool_cost, 6),
            },
        },
    }


def incomplete_answer(body: dict[str, Any], reason: str = "max_output_tokens") -> dict[str, Any]:
    """HTTP 200 body of a run cut short (Perplexity's migration guide: the
    successor of finish_reason "length"); the text so far is kept."""
    return agent_answer(body) | {"status": "incomplete", "incomplete_details": {"reason": reason}}


def failed_answer(
    message: str, status: str = "failed", model: str = "perplexity/sonar"
) -> dict[str, Any]:
    """HTTP 200 body of an Agent API run that failed or was cancelled."""
    return {
        "id": "resp_failed",
        "object": "response",
        "created_at": 1760000000,
        "model": model,
        "status": status,
        "output": [],
        "error": {"code": "internal_error", "message": message},
    }


def chat_answer(body: dict[str, Any], text: str | None = None) -> dict[str, Any]:
    """The default OpenAI-compatible answer: "Echo: <last user text>" (or ``text``), no search."""
    messages = body["messages"]
    if text is None:
        text = f"Echo: {_last_user_text(messages)}"
    inp = sum(_words(content_text(m.get("content", ""))) for m in messages)
    out = _words(text)
    return {
        "id": "chatcmpl-" + _request_id(body),
        "object": "chat.completion",
        "created": 1760000000,
        "model": body.get("model", ""),
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": inp, "completion_tokens": out, "total_tokens": inp + out},
    }


def reasoning_answer(body: dict[str, Any], text: str | None = None) -> dict[str, Any]:
    """``chat_answer`` from a model that thinks first: when ``max_completion_tokens``
    leaves no room after thinking, the answer is empty with finish_reason "length"."""
    answer = chat_answer(body, text)
    choice, usage = answer["choices"][0], answer["usage"]
    completion = REASONING_TOKENS + usage["completion_tokens"]
    limit = body.get("max_completion_tokens")
    reasoning = REASONING_TOKENS
    if limit is not None and limit < completion:
        choice["message"]["content"], choice["finish_reason"] = "", "length"
        completion = reasoning = limit
    usage.update(
        completion_tokens=completion,
        total_tokens=usage["prompt_tokens"] + completion,
        completion_tokens_details={"reasoning_tokens": reasoning},
    )
    return answer


# -- function calls (docs/llm.md, "Tools") ------------------------------------

ToolCallScript = tuple[str, "dict[str, Any] | str"]  # (name, arguments: a dict, or raw text)


def _arguments(arguments: dict[str, Any] | str) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def agent_calls(
    *calls: ToolCallScript, text: str = "", ids: str = "call", cost: float = 0.0021
) -> dict[str, Any]:
    """An Agent API answer that calls functions: a ``function_call`` output item per
    call (``call_id`` ``{ids}_1``, ``{ids}_2``, …), after a message when ``text``."""
    output: list[dict[str, Any]] = []
    if text:
        output.append(
            {
                "type": "message",
                "id": f"msg_{ids}",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        )
    output.extend(
        {
            "type": "function_call",
            "id": f"fc_{ids}_{n}",
            "call_id": f"{ids}_{n}",
            "name": name,
            "arguments": _arguments(arguments),
            "status": "completed",
        }
        for n, (name, arguments) in enumerate(calls, start=1)
    )
    return {
        "id": f"resp_{ids}",
        "object": "response",
        "created_at": 1760000000,
        "status": "completed",
        "model": "perplexity/sonar",
        "output": output,
        "usage": {
            "input_tokens": 40,
            "output_tokens": 12,
            "total_tokens": 52,
            "cost": {
                "currency": "USD",
                "input_cost": cost / 2,
                "output_cost": cost / 2,
                "total_cost": cost,
            },
        },
    }


def chat_calls(
    *calls: ToolCallScript, text: str | None = None, ids: str = "call", cost: float | None = 0.0021
) -> dict[str, Any]:
    """An OpenAI chat-completions answer that calls functions: ``tool_calls`` entries
    (``id`` ``{ids}_1``, …), finish_reason ``tool_calls``; ``content`` null unless ``text``;
    ``usage.cost`` as OpenRouter reports it (None: left out, as OpenAI does)."""
    tool_calls = [
        {
            "id": f"{ids}_{n}",
            "type": "function",
            "function": {"name": name, "arguments": _arguments(arguments)},
        }
        for n, (name, arguments) in enumerate(calls, start=1)
    ]
    return {
        "id": f"chatcmpl-{ids}",
        "object": "chat.completion",
        "created": 1760000000,
        "model": "gpt-5-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "tool_calls": tool_calls},
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": 40,
            "completion_tokens": 12,
            "total_tokens": 52,
            **({"cost": cost} if cost is not None else {}),
        },
    }
