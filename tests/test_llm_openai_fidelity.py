"""Our chat-completions bodies with tools and the fake server's function-call
answers, held against OpenAI's official SDK.

The SDK types requests as TypedDicts, which accept anything at run time, so
``fits`` walks a body against them: every key must be one the TypedDict names
(a misspelt field fails), every required key present, every value of its
type, and one member of a union must fit wholly. Answers are the SDK's
pydantic models, checked like Perplexity's (``strict``: no unnamed field).
"""

from __future__ import annotations

import collections.abc
import json
import types
import typing
from typing import Any, Literal, Required, Union, get_args, get_origin

import pytest
from openai.types.chat import ChatCompletion, ChatCompletionMessageFunctionToolCall
from openai.types.chat.completion_create_params import CompletionCreateParamsNonStreaming
from typing_extensions import is_typeddict

from events.model import ChatTurn, ToolRound
from pipeline import toolbox
from pipeline.llm import build_request, parse_response
from tests.llm_server import chat_answer, chat_calls
from tests.test_llm_sdk_fidelity import ROUNDS, strict

_LISTS = (list, collections.abc.Iterable, collections.abc.Sequence)


def fits(kind: Any, value: Any, path: str = "$") -> list[str]:
    """Why ``value`` is not a ``kind`` of the SDK's types (nothing when it is)."""
    if kind is object or kind is Any:
        return []
    origin = get_origin(kind)
    if is_typeddict(kind):
        return _fits_dict(kind, value, path)
    if origin in (Union, types.UnionType):
        tried = [fits(member, value, path) for member in get_args(kind)]
        return [] if [] in tried else min(tried, key=len)
    if origin is Literal:
        return [] if value in get_args(kind) else [f"{path}: {value!r} not in {get_args(kind)}"]
    if origin in _LISTS:
        if not isinstance(value, list):
            return [f"{path}: not a list"]
        (item,) = get_args(kind)
        return [p for n, v in enumerate(value) for p in fits(item, v, f"{path}[{n}]")]
    if origin in (dict, collections.abc.Mapping):
        return [] if isinstance(value, dict) else [f"{path}: not an object"]
    if kind is type(None):
        return [] if value is None else [f"{path}: not null"]
    if kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{path}: not a number"]
    ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
    return [] if ok else [f"{path}: not a {kind.__name__}"]


def _fits_dict(kind: Any, value: Any, path: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{path}: not an object"]
    hints = typing.get_type_hints(kind)
    # The SDK's modules postpone annotations, so ``__required_keys__`` misses ``Required[…]``.
    marked = typing.get_type_hints(kind, include_extras=True)
    required = {k for k, v in marked.items() if get_origin(v) is Required} | kind.__required_keys__
    problems = [f"{path}.{key}: not in {kind.__name__}" for key in value if key not in hints]
    problems += [f"{path}.{key}: missing" for key in sorted(required) if key not in value]
    for key, item in value.items():
        if key in hints:
            problems += fits(hints[key], item, f"{path}.{key}")
    return problems


TURNS = [ChatTurn("system", "You are wabot."), ChatTurn("user", "lol")]


@pytest.mark.parametrize("rounds", ROUNDS, ids=["no-rounds", "one-round", "two-rounds"])
@pytest.mark.parametrize("offered", [[], ["stay_silent"]], ids=["no-tools", "tools"])
@pytest.mark.parametrize("base", ["https://api.openai.com/v1", "http://127.0.0.1:11434/v1"])
def test_every_chat_request_with_tools_is_a_valid_sdk_request(
    rounds: list[ToolRound], offered: list[str], base: str
) -> None:
    params = {"temperature": None, "max_output_tokens": 1024}
    _, body = build_request(
        "openai", base, "gpt-5-mini", TURNS, params, tools=toolbox.specs(offered), rounds=rounds
    )
    assert fits(CompletionCreateParamsNonStreaming, body) == []
    assert ("tools" in body) == bool(offered)


@pytest.mark.parametrize(
    "wrong",
    [
        {"tools": [{"type": "function", "name": "stay_silent"}]},  # the Agent API's shape
        {"messages": [{"role": "tool", "content": "{}"}]},  # no tool_call_id
        {"messages": [{"role": "tool", "tool_call_id": "c", "content": "{}", "name": "x"}]},
        {"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "type": "function"}]}]},
    ],
)
def test_the_walk_catches_a_wrong_body(wrong: dict[str, Any]) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "q"}]} | wrong
    assert fits(CompletionCreateParamsNonStreaming, body) != []


@pytest.mark.parametrize("text", [None, "One moment"])
def test_the_fake_servers_function_calls_are_valid_sdk_answers(text: str | None) -> None:
    # OpenAI reports no cost (OpenRouter's usage.cost is not in its SDK).
    answer = chat_calls(("stay_silent", {"reason": "x"}), ("nope", "{bad"), text=text, cost=None)
    completion = strict(ChatCompletion, answer)
    message = completion.choices[0].message
    assert completion.choices[0].finish_reason == "tool_calls"
    assert message.content == text
    made = [
        c for c in message.tool_calls or [] if isinstance(c, ChatCompletionMessageFunctionToolCall)
    ]
    calls = [(c.id, c.function.name, c.function.arguments) for c in made]
    parsed = parse_response("openai", json.dumps(answer).encode())
    assert [(c.id, c.name, c.arguments) for c in parsed.tool_calls] == calls


def test_the_fake_servers_plain_answer_is_a_valid_sdk_answer() -> None:
    _, body = build_request("openai", "http://h/v1", "m", TURNS, {})
    strict(ChatCompletion, chat_answer(body))
