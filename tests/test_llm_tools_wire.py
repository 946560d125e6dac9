"""Function tools on the wire, both shapes (docs/llm.md, "Tools"): the bodies a
request with tools and earlier rounds becomes, and the calls read from answers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from events.model import ChatTurn, ToolCall, ToolRound
from pipeline import toolbox
from pipeline.llm import MalformedResponse, build_request, parse_response
from tests.llm_server import agent_calls, chat_calls, validate_agent, validate_chat

TURNS = [ChatTurn("system", "You are wabot."), ChatTurn("user", "lol")]
SPECS = toolbox.specs(["stay_silent"])
ROUND = ToolRound(
    calls=[ToolCall(id="c1", name="nope", arguments='{"a": 1}')],
    outputs=['{"error":"unknown tool"}'],
    content="let me see",
)


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def test_agent_api_tools_follow_web_search_and_rounds_follow_the_turns() -> None:
    _, body = build_request(
        "perplexity",
        "https://api.perplexity.ai",
        "m",
        TURNS,
        {"web_search": True},
        tools=SPECS,
        rounds=[ROUND],
    )
    assert body["tools"] == [{"type": "web_search"}, {"type": "function", **SPECS[0]}]
    assert body["input"] == [
        {"role": "user", "content": "lol"},
        {"type": "function_call", "call_id": "c1", "name": "nope", "arguments": '{"a": 1}'},
        {"type": "function_call_output", "call_id": "c1", "output": '{"error":"unknown tool"}'},
    ]
    assert validate_agent(body) is body  # the fake (as strict as the API) takes it


def test_chat_completions_tools_and_rounds() -> None:
    url, body = build_request("openai", "http://h/v1", "m", TURNS, {}, tools=SPECS, rounds=[ROUND])
    assert url == "http://h/v1/chat/completions"
    assert body["tools"] == [{"type": "function", "function": SPECS[0]}]
    assert body["messages"][-2:] == [
        {
            "role": "assistant",
            "content": "let me see",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "nope", "arguments": '{"a": 1}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": '{"error":"unknown tool"}'},
    ]
    assert validate_chat(body) is body


def test_no_tools_and_no_rounds_leave_the_body_as_it_was() -> None:
    for provider in ("perplexity", "openai"):
        _, plain = build_request(provider, "http://h", "m", TURNS, {})
        _, empty = build_request(provider, "http://h", "m", TURNS, {}, tools=[], rounds=[])
        assert plain == empty
        assert "tools" not in plain


def test_the_calls_are_read_from_both_shapes() -> None:
    agent = parse_response(
        "perplexity", encode(agent_calls(("stay_silent", {"reason": "x"}), ("nope", "{bad")))
    )
    chat = parse_response("openai", encode(chat_calls(("stay_silent", {"reason": "x"}))))
    assert agent.tool_calls == [
        ToolCall(id="call_1", name="stay_silent", arguments='{"reason": "x"}'),
        ToolCall(id="call_2", name="nope", arguments="{bad"),
    ]
    assert (agent.content, agent.finish_reason, agent.usage.cost_usd) == ("", "tool_calls", 0.0021)
    assert chat.tool_calls == [
        ToolCall(id="call_1", name="stay_silent", arguments='{"reason": "x"}')
    ]
    assert (chat.content, chat.finish_reason) == ("", "tool_calls")


def test_text_written_with_the_calls_is_kept() -> None:
    agent = parse_response("perplexity", encode(agent_calls(("a", {}), text="One moment")))
    chat = parse_response("openai", encode(chat_calls(("a", {}), text="One moment")))
    assert agent.content == chat.content == "One moment"


def test_a_chat_call_without_a_function_name_is_malformed() -> None:
    body = chat_calls(("a", {}))
    del body["choices"][0]["message"]["tool_calls"][0]["function"]["name"]
    with pytest.raises(MalformedResponse):
        parse_response("openai", encode(body))


def test_an_answer_with_neither_text_nor_calls_is_still_malformed() -> None:
    body = agent_calls()
    with pytest.raises(MalformedResponse, match="no message item"):
        parse_response("perplexity", encode(body))
