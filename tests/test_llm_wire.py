"""Request bodies and response parsing per provider (pure, no network)."""

import json
from typing import Any

import msgspec
import pytest

from events.model import ChatTurn, Citation, Usage
from pipeline.llm import (
    LlmResult,
    MalformedResponse,
    RunFailed,
    build_request,
    parse_response,
)
from tests.llm_server import agent_answer, chat_answer, failed_answer, incomplete_answer

CONVO = [
    ChatTurn("system", "You are wabot."),
    ChatTurn("user", "hi"),
    ChatTurn("user", "anyone?"),
    ChatTurn("assistant", "Hello!"),
    ChatTurn("system", "Answer in English."),
    ChatTurn("user", "What is new?"),
]
PARAMS: dict[str, Any] = {"temperature": 0.2, "max_output_tokens": 512, "web_search": True}


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def test_perplexity_body_is_exactly_the_agent_api_fields() -> None:
    url, body = build_request(
        "perplexity", "https://api.perplexity.ai/", "perplexity/sonar", CONVO, PARAMS
    )
    assert url == "https://api.perplexity.ai/v1/responses"
    assert json.dumps(body) == json.dumps(
        {
            "model": "perplexity/sonar",
            "input": [
                {"role": "user", "content": "hi\n\nanyone?"},
                {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": "What is new?"},
            ],
            "instructions": "You are wabot.\n\nAnswer in English.",
            "tools": [{"type": "web_search"}],
            "max_output_tokens": 512,
            "temperature": 0.2,
        }
    )


def test_perplexity_body_leaves_out_what_is_off_or_unset() -> None:
    _, body = build_request(
        "perplexity",
        "https://api.perplexity.ai",
        "m",
        [ChatTurn("user", "q")],
        {"web_search": False},
    )
    assert body == {"model": "m", "input": [{"role": "user", "content": "q"}]}


@pytest.mark.parametrize(
    "base",
    ["https://api.perplexity.ai", "https://api.perplexity.ai/", "https://api.perplexity.ai/v1/"],
)
def test_perplexity_url_never_doubles_slashes_or_v1(base: str) -> None:
    url, _ = build_request("perplexity", base, "m", [ChatTurn("user", "q")], {})
    assert url == "https://api.perplexity.ai/v1/responses"


def test_openai_body_has_system_first_and_max_tokens() -> None:
    url, body = build_request("openai", "http://localhost:11434/v1/", "llama3", CONVO, PARAMS)
    assert url == "http://localhost:11434/v1/chat/completions"
    assert json.dumps(body) == json.dumps(
        {
            "model": "llama3",
            "messages": [
                {"role": "system", "content": "You are wabot.\n\nAnswer in English."},
                {"role": "user", "content": "hi\n\nanyone?"},
                {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": "What is new?"},
            ],
            "temperature": 0.2,
            "max_tokens": 512,
        }
    )


@pytest.mark.parametrize(
    ("base_url", "limit"),
    [
        # OpenAI's own API, and Azure's copy: reasoning models refuse max_tokens.
        ("https://api.openai.com/v1", "max_completion_tokens"),
        ("https://API.OpenAI.com/v1/", "max_completion_tokens"),
        ("https://acme.openai.azure.com/openai/v1", "max_completion_tokens"),
        # Everything else knows max_tokens; Ollama and LM Studio know nothing else.
        ("http://127.0.0.1:11434/v1", "max_tokens"),
        ("http://vllm.lan:8000/v1", "max_tokens"),
        ("https://openrouter.ai/api/v1", "max_tokens"),
        ("https://api.openai.com.example.net/v1", "max_tokens"),
    ],
)
def test_openai_token_limit_goes_under_the_name_the_server_accepts(
    base_url: str, limit: str
) -> None:
    _, body = build_request("openai", base_url, "gpt-5", [ChatTurn("user", "q")], PARAMS)
    assert body == {
        "model": "gpt-5",
        "messages": [{"role": "user", "content": "q"}],
        "temperature": 0.2,
        limit: 512,
    }


def test_openai_body_leaves_out_null_temperature_and_token_limit() -> None:
    params = {"temperature": None, "max_output_tokens": None, "web_search": False}
    _, body = build_request("openai", "https://api.openai.com/v1", "gpt-5", CONVO[-1:], params)
    assert body == {"model": "gpt-5", "messages": [{"role": "user", "content": "What is new?"}]}


def test_requests_rebuild_byte_for_byte_from_recorded_messages() -> None:
    """Replay decodes LlmRequested.messages/params from the log and must get the same bytes."""
    recorded = msgspec.json.decode(msgspec.json.encode(CONVO), type=list[ChatTurn])
    params = msgspec.json.decode(msgspec.json.encode(PARAMS))
    for provider in ("perplexity", "openai"):
        first = build_request(provider, "http://h", "m", CONVO, PARAMS)
        again = build_request(provider, "http://h", "m", recorded, params)
        assert msgspec.json.encode(first) == msgspec.json.encode(again)


@pytest.mark.parametrize(
    ("provider", "params", "messages", "error"),
    [
        ("sonar", {}, [ChatTurn("user", "q")], "unknown LLM provider 'sonar'"),
        ("openai", {"top_k": 3}, [ChatTurn("user", "q")], "unknown LLM params: top_k"),
        ("openai", {}, [ChatTurn("system", "s")], "at least one user turn"),
    ],
)
def test_build_request_rejects_what_it_cannot_send(
    provider: str, params: dict[str, Any], messages: list[ChatTurn], error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        build_request(provider, "http://h", "m", messages, params)


def agent_request(text: str = "What is new?", web_search: bool = True) -> dict[str, Any]:
    return build_request(
        "perplexity", "http://h", "m", [ChatTurn("user", text)], {"web_search": web_search}
    )[1]


def test_agent_answer_gives_text_citations_tokens_and_cost() -> None:
    result = parse_response("perplexity", encode(agent_answer(agent_request())))
    assert result.content == "Echo: What is new?"
    assert result.citations == [
        Citation(url="https://www.example.com/news/echo", title="Echo news"),
        Citation(url="https://docs.example.org/guide", title="The echo guide"),
    ]
    assert result.usage == Usage(input_tokens=3, output_tokens=4, total_tokens=7, cost_usd=0.0061)
    assert result.finish_reason == "stop"
    assert result.response_id.startswith("resp_")


def test_agent_answer_without_search_has_no_citations() -> None:
    result = parse_response("perplexity", encode(agent_answer(agent_request(web_search=False))))
    assert result.citations == []
    assert result.usage.cost_usd == 0.0011


def test_agent_text_parts_are_joined_and_think_stripped() -> None:
    body = {
        "id": "resp_1",
        "status": "completed",
        "output": [
            {
                "type": "message",
                "content": [
                    {"type": "output_text", "text": "<think>hmm</think>Part one, "},
                    {"type": "refusal", "refusal": "ignored"},
                    {"type": "output_text", "text": "part two."},
                ],
            },
        ],
    }
    result = parse_response("perplexity", encode(body))
    assert result == LlmResult(
        content="Part one, part two.",
        citations=[],
        usage=Usage(),
        finish_reason="stop",
        response_id="resp_1",
    )


@pytest.mark.parametrize(
    ("reason", "finish"), [("max_output_tokens", "length"), ("content_filter", "content_filter")]
)
def test_incomplete_agent_run_keeps_its_text_and_reason(reason: str, finish: str) -> None:
    body = incomplete_answer(agent_request(), reason)
    result = parse_response("perplexity", encode(body))
    assert (result.content, result.finish_reason) == ("Echo: What is new?", finish)


def test_incomplete_agent_run_without_text_is_a_failure() -> None:
    body = {
        "status": "incomplete",
        "incomplete_details": {"reason": "max_output_tokens"},
        "output": [],
    }
    with pytest.raises(RunFailed) as info:
        parse_response("perplexity", encode(body))
    assert str(info.value) == (
        "the LLM used up its token limit before writing any text: "
        "raise llm.max_output_tokens in app.json"
    )
    assert info.value.usage is None  # no usage reported: nothing known to be billed


@pytest.mark.parametrize("reason", ["max_output_tokens", "content_filter"])
def test_incomplete_agent_run_without_text_still_reports_what_it_cost(reason: str) -> None:
    """A reasoning model that thought until the limit is billed for it: the failure
    carries the usage, so the spend (and the daily budget) counts it."""
    body = {
        "status": "incomplete",
        "incomplete_details": {"reason": reason},
        "output": [],
        "usage": {
            "input_tokens": 9000,
            "output_tokens": 1024,
            "total_tokens": 10024,
            "cost": {"currency": "USD", "total_cost": 0.02},
        },
    }
    with pytest.raises(RunFailed) as info:
        parse_response("perplexity", encode(body))
    assert info.value.usage == Usage(
        input_tokens=9000, output_tokens=1024, total_tokens=10024, cost_usd=0.02
    )


def test_failed_agent_run_reports_the_cost_it_says() -> None:
    body = {**failed_answer("overloaded", "failed"), "usage": {"input_tokens": 5, "cost": 0.001}}
    with pytest.raises(RunFailed) as info:
        parse_response("perplexity", encode(body))
    assert info.value.usage is not None
    assert info.value.usage.cost_usd == 0.001


@pytest.mark.parametrize("status", ["failed", "cancelled"])
def test_failed_agent_run_with_http_200_is_a_final_failure(status: str) -> None:
    with pytest.raises(RunFailed, match=f"run {status}: upstream model overloaded") as info:
        parse_response("perplexity", encode(failed_answer("upstream model overloaded", status)))
    assert not info.value.retryable


@pytest.mark.parametrize(
    ("provider", "body", "error"),
    [
        ("perplexity", b"<html>oops</html>", "not JSON: '<html>oops</html>'"),
        ("perplexity", b"", "not JSON"),
        ("perplexity", b"[1, 2]", "Expected `object`, got `array`"),
        ("perplexity", b'{"status": "completed", "output": []}', "no message item"),
        (
            "perplexity",
            b'{"output": [{"type": "message", "content": "str"}]}',
            r"\$.output\[0\].content",
        ),
        ("perplexity", b'{"output": [], "usage": {"input_tokens": "many"}}', "usage.input_tokens"),
        ("openai", b'{"choices": []}', "no choices"),
        ("openai", b'{"choices": [{"message": {"role": "assistant"}}]}', "content is missing"),
        ("openai", b'{"choices": [{"message": null}]}', "content is missing"),
    ],
)
def test_malformed_bodies_become_one_clear_error(provider: str, body: bytes, error: str) -> None:
    with pytest.raises(MalformedResponse, match=error) as info:
        parse_response(provider, body)
    assert info.value.kind == "malformed"
    assert "\n" not in str(info.value)


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def deep_bodies(depth: int) -> list[bytes]:
    """Deep JSON where each parser meets it: the top, a typed field, ignored fields."""
    arrays, objects = nested(depth), b'{"a":' * depth + b"1" + b"}" * depth
    return [
        arrays,
        b'{"output": ' + arrays + b"}",
        b'{"choices": ' + arrays + b"}",
        b'{"unknown": ' + arrays + b"}",
        b'{"unknown": ' + objects + b"}",
        b'{"output": [{"type": "message", "extra": ' + arrays + b"}]}",
        b'{"choices": [{"message": {"content": "x", "extra": ' + arrays + b"}}]}",
    ]


@pytest.mark.parametrize("provider", ["perplexity", "openai"])
@pytest.mark.parametrize("depth", [1_000, 10_000])
def test_deeply_nested_json_is_malformed_not_a_recursion_error(provider: str, depth: int) -> None:
    for body in deep_bodies(depth):
        with pytest.raises(MalformedResponse, match=r"^malformed LLM response: "):
            parse_response(provider, body)


def test_openai_answer_from_a_local_server_needs_no_search_fields() -> None:
    request = build_request("openai", "http://h", "llama3", [ChatTurn("user", "hey you")], {})[1]
    result = parse_response("openai", encode(chat_answer(request)))
    assert (result.content, result.citations, result.finish_reason) == ("Echo: hey you", [], "stop")
    assert result.usage == Usage(input_tokens=2, output_tokens=3, total_tokens=5, cost_usd=None)


def test_openai_legacy_perplexity_answer_keeps_citation_order_and_titles() -> None:
    body = {
        "id": "3c1d",
        "choices": [
            {
                "message": {"content": "<think>x</think>Rates held [1][2]."},
                "finish_reason": "length",
            }
        ],
        "citations": ["https://ecb.europa.eu/pr", "https://reuters.com/m"],
        "search_results": [{"title": "Reuters", "url": "https://reuters.com/m"}],
        "usage": {
            "prompt_tokens": 12,
            "completion_tokens": 180,
            "total_tokens": 192,
            "cost": {"request_cost": 0.006, "total_cost": 0.00874},
        },
    }
    result = parse_response("openai", encode(body))
    assert result.content == "Rates held [1][2]."
    assert result.citations == [
        Citation(url="https://ecb.europa.eu/pr"),
        Citation(url="https://reuters.com/m", title="Reuters"),
    ]
    assert result.usage == Usage(
        input_tokens=12, output_tokens=180, total_tokens=192, cost_usd=0.00874
    )
    assert (result.finish_reason, result.response_id) == ("length", "3c1d")


def test_openai_search_results_alone_become_citations_and_bare_cost_is_read() -> None:
    body = {
        "choices": [{"message": {"content": "ok"}, "finish_reason": None}],
        "search_results": [{"title": "A", "url": "https://a.example"}, {"title": "no url"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "cost": 0.0002},
    }
    result = parse_response("openai", encode(body))
    assert result.citations == [Citation(url="https://a.example", title="A")]
    assert result.usage == Usage(input_tokens=1, output_tokens=1, total_tokens=2, cost_usd=0.0002)
    assert result.finish_reason == "stop"


def test_openai_answer_cut_before_any_text_says_which_setting_to_raise() -> None:
    """Reasoning models spend the token limit thinking; none may be left for the answer."""
    body = {
        "choices": [{"message": {"role": "assistant", "content": ""}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 1024, "cost": 0.003},
    }
    with pytest.raises(RunFailed) as info:
        parse_response("openai", encode(body))
    assert str(info.value) == (
        "the LLM used up its token limit before writing any text: "
        "raise llm.max_output_tokens in app.json"
    )
    # Billed all the same: the failure carries what it cost, for the spend.
    assert info.value.usage == Usage(
        input_tokens=9, output_tokens=1024, total_tokens=1033, cost_usd=0.003
    )


@pytest.mark.parametrize("error", [{"message": "model crashed"}, "model crashed"])
def test_openai_http_200_error_body_is_a_run_failure(error: object) -> None:
    with pytest.raises(RunFailed, match="failed: model crashed"):
        parse_response("openai", encode({"error": error}))
