"""The fake provider speaks the real shapes, so client tests prove something."""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.llm_server import (
    ALTERNATION,
    LAST_USER,
    REASONING_TOKENS,
    RETIRED,
    TEST_KEY,
    FakeLlmServer,
    Reply,
)

AUTH = {"authorization": f"Bearer {TEST_KEY}"}
ASK = {"model": "perplexity/sonar", "input": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def server() -> Iterator[FakeLlmServer]:
    with FakeLlmServer() as fake:
        yield fake


@pytest.fixture
def http(server: FakeLlmServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, headers=AUTH, timeout=5) as client:
        yield client


def error_of(response: httpx.Response) -> tuple[int, str, str]:
    error = response.json()["error"]
    return response.status_code, error["type"], error["message"]


def test_unknown_agent_field_is_rejected_like_the_go_decoder(http: httpx.Client) -> None:
    response = http.post("/v1/responses", json=ASK | {"max_tokens": 5, "stop": ["x"]})
    assert response.json() == {
        "error": {
            "message": 'invalid request body: json: unknown field "max_tokens"',
            "type": "invalid_request_error",
            "code": 400,
        }
    }
    nested = ASK | {"input": [{"role": "user", "content": "hi", "name": "bob"}]}
    assert error_of(http.post("/v1/responses", json=nested))[2].endswith('unknown field "name"')


@pytest.mark.parametrize(
    ("roles", "message"),
    [
        (["user", "user"], ALTERNATION),
        (["system", "user", "system", "user"], ALTERNATION),
        (["user", "assistant"], LAST_USER),
        (["system"], LAST_USER),
    ],
)
def test_message_order_is_enforced(http: httpx.Client, roles: list[str], message: str) -> None:
    body = ASK | {"input": [{"role": r, "content": "x"} for r in roles]}
    assert error_of(http.post("/v1/responses", json=body)) == (400, "invalid_message", message)


def test_bad_key_gets_the_proxy_html_page(server: FakeLlmServer) -> None:
    response = httpx.post(
        f"{server.base_url}/v1/responses", json=ASK, headers={"authorization": "Bearer no"}
    )
    assert response.status_code == 401
    assert response.headers["content-type"] == "text/html"
    assert "<title>401 Authorization Required</title>" in response.text


def test_legacy_sonar_path_is_retired(http: httpx.Client) -> None:
    body = {"model": "sonar", "messages": [{"role": "user", "content": "hi"}]}
    for path in ("/chat/completions", "/v1/sonar"):
        assert error_of(http.post(path, json=body)) == (
            403,
            "chat_completions_not_available",
            RETIRED,
        )


def test_unknown_path_is_404(http: httpx.Client) -> None:
    assert http.post("/v2/whatever", json={}).status_code == 404


def test_agent_alias_and_default_answer_are_deterministic(http: httpx.Client) -> None:
    first = http.post("/v1/responses", json=ASK).json()
    again = http.post("/v1/agent", json=ASK).json()
    assert first == again
    assert first["output"][-1]["content"][0]["text"] == "Echo: hi"


def test_invalid_json_is_a_400(http: httpx.Client) -> None:
    status, _, message = error_of(http.post("/v1/responses", content=b"{nope"))
    assert (status, message.startswith("invalid request body:")) == (400, True)


def test_chat_completions_under_v1_answers_like_ollama(http: httpx.Client) -> None:
    body: dict[str, Any] = {
        "model": "llama3",
        "messages": [{"role": "user", "content": "yo"}],
        "seed": 1,
    }
    answer = http.post("/v1/chat/completions", json=body).json()
    assert answer["choices"][0] == {
        "index": 0,
        "message": {"role": "assistant", "content": "Echo: yo"},
        "finish_reason": "stop",
    }


def test_script_is_fifo_then_default_and_requests_are_recorded(
    server: FakeLlmServer, http: httpx.Client
) -> None:
    server.script(Reply(status=429, headers={"retry-after": "0"}), Reply(body="plain"))
    first = http.post("/v1/responses", json=ASK)
    assert (first.status_code, first.headers["retry-after"]) == (429, "0")
    assert first.json()["error"]["type"] == "request_rate_limit_exceeded"
    assert http.post("/v1/responses", json=ASK).text == "plain"
    assert http.post("/v1/responses", json=ASK).json()["status"] == "completed"
    assert [r.json for r in server.requests] == [ASK, ASK, ASK]
    assert server.requests[0].headers["authorization"] == f"Bearer {TEST_KEY}"


def test_invalid_request_does_not_consume_the_script(
    server: FakeLlmServer, http: httpx.Client
) -> None:
    server.script(Reply(status=500))
    assert http.post("/v1/responses", json={"input": "hi"}).status_code == 400
    assert http.post("/v1/responses", json=ASK).status_code == 500


def test_closing_releases_held_answers() -> None:
    with FakeLlmServer(api_key=None) as server:
        gate = server.hold()
    assert gate.is_set()


CHAT = {"model": "gpt-5", "messages": [{"role": "user", "content": "yo"}]}


@pytest.fixture
def reasoning() -> Iterator[httpx.Client]:
    """The fake answering /v1/chat/completions like OpenAI's GPT-5 and o-series."""
    with (
        FakeLlmServer(openai_reasoning=True) as fake,
        httpx.Client(base_url=fake.base_url, headers=AUTH, timeout=5) as client,
    ):
        yield client


def test_reasoning_model_refuses_max_tokens_with_openais_error(reasoning: httpx.Client) -> None:
    response = reasoning.post("/v1/chat/completions", json=CHAT | {"max_tokens": 64})
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.",
            "type": "invalid_request_error",
            "param": "max_tokens",
            "code": "unsupported_parameter",
        }
    }


@pytest.mark.parametrize(("temperature", "shown"), [(0.2, "0.2"), (0, "0"), (1.5, "1.5")])
def test_reasoning_model_refuses_any_temperature_but_1(
    reasoning: httpx.Client, temperature: float, shown: str
) -> None:
    response = reasoning.post("/v1/chat/completions", json=CHAT | {"temperature": temperature})
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": f"Unsupported value: 'temperature' does not support {shown} with this "
            "model. Only the default (1) value is supported.",
            "type": "invalid_request_error",
            "param": "temperature",
            "code": "unsupported_value",
        }
    }


def test_reasoning_model_answers_within_max_completion_tokens(reasoning: httpx.Client) -> None:
    body = CHAT | {"temperature": 1, "max_completion_tokens": 1024}
    answer = reasoning.post("/v1/chat/completions", json=body).json()
    assert answer["choices"][0]["message"]["content"] == "Echo: yo"
    assert answer["choices"][0]["finish_reason"] == "stop"
    usage = answer["usage"]
    assert usage["completion_tokens_details"]["reasoning_tokens"] == REASONING_TOKENS
    assert usage["completion_tokens"] == REASONING_TOKENS + 2


def test_reasoning_model_can_spend_the_whole_limit_thinking(reasoning: httpx.Client) -> None:
    body = CHAT | {"max_completion_tokens": REASONING_TOKENS}
    answer = reasoning.post("/v1/chat/completions", json=body).json()
    assert answer["choices"][0]["message"]["content"] == ""
    assert answer["choices"][0]["finish_reason"] == "length"
    assert answer["usage"]["completion_tokens"] == REASONING_TOKENS


def test_other_servers_take_max_tokens_and_any_temperature(http: httpx.Client) -> None:
    body = CHAT | {"max_tokens": 64, "temperature": 0.2}
    answer = http.post("/v1/chat/completions", json=body).json()
    assert answer["choices"][0]["message"]["content"] == "Echo: yo"
