"""Our Agent API bodies and the fake server's answers, held against Perplexity's own SDK.

``perplexityai`` ships pydantic models generated from Perplexity's OpenAPI
spec (``perplexity.generated.api``). They accept unknown fields silently
(``extra="allow"``), so ``strict`` also walks the parsed tree and fails on any
field the schema does not name: a misspelt field must not pass.
"""

import itertools
import json
from collections.abc import Callable, Iterator
from typing import Any, Literal, TypeVar, get_args

import httpx
import pydantic
import pytest
from perplexity.generated import api

from events.model import ChatTurn, ImageRef, ToolCall, ToolRound
from pipeline import toolbox
from pipeline.llm import build_request, parse_response
from tests.llm_server import (
    AGENT_FIELDS,
    CALL_FIELDS,
    FUNCTION_FIELDS,
    INPUT_FIELDS,
    OUTPUT_FIELDS,
    TEST_KEY,
    TOOL_FIELDS,
    FakeLlmServer,
    Reply,
    agent_calls,
    failed_answer,
    incomplete_answer,
)

_M = TypeVar("_M", bound=pydantic.BaseModel)


def extra_fields(value: Any, path: str = "$") -> Iterator[str]:
    """Every field, at any depth, that the SDK's models accepted without naming it."""
    if isinstance(value, pydantic.BaseModel):
        yield from (f"{path}.{key}" for key in value.model_extra or {})
        for name in type(value).model_fields:
            yield from extra_fields(getattr(value, name), f"{path}.{name}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from extra_fields(item, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from extra_fields(item, f"{path}.{key}")


def strict(model: type[_M], body: Any) -> _M:
    """Parse ``body`` as the wire JSON it is, with no coercion and no unnamed fields."""
    parsed = model.model_validate_json(json.dumps(body), strict=True)
    extras = list(extra_fields(parsed))
    assert extras == [], f"{extras} are not in the SDK's {model.__name__}"
    return parsed


# --- requests: what build_request sends to /v1/responses ---------------------

SYSTEMS: tuple[list[ChatTurn], ...] = ([], [ChatTurn("system", "You are wabot.")])
CONTEXTS: tuple[list[ChatTurn], ...] = (
    [],
    [ChatTurn("user", "hi"), ChatTurn("assistant", "Hello!")],
    # Same-role runs and a late system turn, which normalize_turns merges.
    [
        ChatTurn("user", "a"),
        ChatTurn("user", "b"),
        ChatTurn("assistant", "c"),
        ChatTurn("system", "d"),
    ],
)
PARAM_SETS: tuple[dict[str, Any], ...] = (
    {},
    {"web_search": True},
    {"web_search": False, "temperature": 0.2, "max_output_tokens": 1024},
    {"web_search": True, "temperature": 0, "max_output_tokens": 16},
    {"web_search": True, "temperature": None, "max_output_tokens": None},
)
REQUESTS = [
    pytest.param(system + context + [ChatTurn("user", "What is new?")], params, id=f"{s}-{c}-{p}")
    for (s, system), (c, context), (p, params) in itertools.product(
        enumerate(SYSTEMS), enumerate(CONTEXTS), enumerate(PARAM_SETS)
    )
]


@pytest.mark.parametrize(("turns", "params"), REQUESTS)
def test_every_agent_request_is_a_valid_sdk_request(
    turns: list[ChatTurn], params: dict[str, Any]
) -> None:
    _, body = build_request(
        "perplexity", "https://api.perplexity.ai", "perplexity/sonar", turns, params
    )
    request = strict(api.ResponsesRequestInput, body)
    assert isinstance(request.input, list)
    assert all(isinstance(item, api.InputMessageInput) for item in request.input)
    assert [type(tool) for tool in request.tools or []] == (
        [api.WebSearchToolInput] if params.get("web_search") else []
    )


def test_a_turn_with_images_is_a_valid_sdk_request() -> None:
    turns = [
        ChatTurn("system", "You are wabot."),
        ChatTurn("user", "[image] What is this?", (ImageRef(sha256="a" * 64, mime="image/png"),)),
    ]
    url = "data:image/png;base64,iVBORw0KGgo="
    _, body = build_request(
        "perplexity",
        "https://api.perplexity.ai",
        "perplexity/sonar",
        turns,
        {},
        images=lambda _: url,
    )
    request = strict(api.ResponsesRequestInput, body)
    assert isinstance(request.input, list)
    [message] = request.input
    assert isinstance(message, api.InputMessageInput)
    assert isinstance(message.content, list)
    assert [(p.type, p.text, p.image_url) for p in message.content] == [
        ("input_text", "[image] What is this?", None),
        ("input_image", None, url),
    ]
    assert {"type", "text", "image_url"} <= set(api.InputContentPartInput.model_fields)


@pytest.mark.parametrize(
    "wrong",
    [
        {"max_tokens": 5},  # a chat-completions name at the top
        {"input": [{"role": "user", "content": "q", "name": "bob"}]},  # nested
        {"tools": [{"type": "web_search", "search_mode": "web"}]},  # in a union member
        {"temperature": "0.2"},  # a string where the API wants a number
    ],
)
def test_strict_check_catches_a_wrong_field(wrong: dict[str, Any]) -> None:
    body = {"model": "perplexity/sonar", "input": [{"role": "user", "content": "q"}]} | wrong
    with pytest.raises((AssertionError, pydantic.ValidationError)):
        strict(api.ResponsesRequestInput, body)


def test_fake_server_accepts_exactly_the_sdk_request_fields() -> None:
    """A fake stricter than the API fails good bodies; a looser one passes bad ones."""
    assert set(api.ResponsesRequestInput.model_fields) == AGENT_FIELDS
    assert set(api.InputMessageInput.model_fields) == INPUT_FIELDS
    assert set(api.WebSearchToolInput.model_fields) == TOOL_FIELDS
    assert set(api.FunctionToolInput.model_fields) == FUNCTION_FIELDS
    assert set(api.FunctionCallInputInput.model_fields) == CALL_FIELDS
    assert set(api.FunctionCallOutputInputInput.model_fields) == OUTPUT_FIELDS


# --- function tools (docs/llm.md, "Tools") -----------------------------------

# Tool loops of every shape a request may carry (also used by the OpenAI SDK's test).
ROUNDS = [
    [],
    [ToolRound(calls=[ToolCall(id="c1", name="stay_silent", arguments="{}")], outputs=["{}"])],
    [
        ToolRound(
            calls=[
                ToolCall(id="c1", name="nope", arguments='{"a": 1}'),
                ToolCall(id="c2", name="stay_silent", arguments="{bad"),
            ],
            outputs=['{"error":"x"}', '{"error":"y"}'],
            content="let me see",
        ),
        ToolRound(calls=[ToolCall(id="c3", name="nope", arguments="{}")], outputs=["{}"]),
    ],
]


@pytest.mark.parametrize("rounds", ROUNDS, ids=["no-rounds", "one-round", "two-rounds"])
@pytest.mark.parametrize("offered", [[], ["stay_silent"]], ids=["no-tools", "tools"])
@pytest.mark.parametrize("web_search", [False, True])
def test_every_agent_request_with_tools_is_a_valid_sdk_request(
    rounds: list[ToolRound], offered: list[str], web_search: bool
) -> None:
    turns = [ChatTurn("system", "You are wabot."), ChatTurn("user", "lol")]
    _, body = build_request(
        "perplexity",
        "https://api.perplexity.ai",
        "perplexity/sonar",
        turns,
        {"web_search": web_search},
        tools=toolbox.specs(offered),
        rounds=rounds,
    )
    request = strict(api.ResponsesRequestInput, body)
    assert isinstance(request.input, list)
    kinds = [type(item) for item in request.input]
    assert kinds == [api.InputMessageInput, *(k for r in rounds for k in _round_kinds(r))]
    tools = [type(tool) for tool in request.tools or []]
    search = [api.WebSearchToolInput] if web_search else []
    assert tools == search + [api.FunctionToolInput] * len(offered)


def _round_kinds(done: ToolRound) -> list[type]:
    return [api.FunctionCallInputInput] * len(done.calls) + [
        api.FunctionCallOutputInputInput
    ] * len(done.calls)


@pytest.mark.parametrize("text", ["", "One moment"])
def test_the_fake_servers_function_calls_are_valid_sdk_responses(text: str) -> None:
    answer = agent_calls(("stay_silent", {"reason": "x"}), ("nope", "{bad"), text=text)
    response = strict(api.ResponsesResponseOutput, answer)
    made = [i for i in response.output if isinstance(i, api.FunctionCallOutputItemOutput)]
    parsed = parse_response("perplexity", json.dumps(answer).encode())
    assert [(c.call_id, c.name, c.arguments) for c in made] == [
        (c.id, c.name, c.arguments) for c in parsed.tool_calls
    ]
    assert response.output_text == parsed.content == text


# --- answers: what the fake server sends back for /v1/responses -------------


@pytest.fixture
def server() -> Iterator[FakeLlmServer]:
    with FakeLlmServer() as fake:
        yield fake


@pytest.fixture
def ask(server: FakeLlmServer) -> Iterator[Callable[..., dict[str, Any]]]:
    """POST a body to /v1/responses (after scripting ``reply``) and return the JSON answer."""
    auth = {"authorization": f"Bearer {TEST_KEY}"}
    with httpx.Client(base_url=server.base_url, headers=auth, timeout=5) as http:

        def post(body: dict[str, Any], reply: Reply | None = None) -> dict[str, Any]:
            if reply is not None:
                server.script(reply)
            response = http.post("/v1/responses", json=body)
            assert response.status_code == 200, response.text
            answer: dict[str, Any] = response.json()
            return answer

        yield post


Ask = Callable[..., dict[str, Any]]


@pytest.mark.parametrize(("turns", "params"), REQUESTS)
def test_every_default_answer_is_a_valid_sdk_response(
    ask: Ask, turns: list[ChatTurn], params: dict[str, Any]
) -> None:
    _, body = build_request("perplexity", "http://h", "perplexity/sonar", turns, params)
    answer = ask(body)
    response = strict(api.ResponsesResponseOutput, answer)
    assert response.status == "completed"
    assert response.output_text == "Echo: What is new?"  # the SDK's own reading of the text
    kinds = [type(item) for item in response.output]
    search = [api.SearchResultsOutputItemOutput] if params.get("web_search") else []
    assert kinds == [*search, api.MessageOutputItemOutput]
    assert response.usage is not None
    assert response.usage.cost is not None
    assert parse_response("perplexity", json.dumps(answer).encode()).usage.cost_usd == (
        response.usage.cost.total_cost
    )


def test_a_string_input_gets_a_valid_sdk_response(ask: Ask) -> None:
    strict(api.ResponsesResponseOutput, ask({"model": "perplexity/sonar", "input": "hi"}))


@pytest.mark.parametrize("status", ["failed", "cancelled"])
def test_failed_and_cancelled_runs_are_valid_sdk_responses(ask: Ask, status: str) -> None:
    body = {"model": "perplexity/sonar", "input": "hi"}
    answer = ask(body, Reply(body=failed_answer("upstream overloaded", status)))
    response = strict(api.ResponsesResponseOutput, answer)
    assert response.status == status
    assert response.error is not None
    assert response.error.message == "upstream overloaded"


# SDK 0.46.1's schema has no "incomplete" status and no incomplete_details, but
# Perplexity's migration guide (api-platform-developers, response-and-streaming.md)
# documents both as the successor of finish_reason "length". The fake sends
# them; this model is the SDK's plus exactly those two documented additions.
_SDK_STATUSES = get_args(api.StatusOutput)


class _IncompleteDetails(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    reason: str


class _DocumentedResponse(api.ResponsesResponseOutput):
    # Widening a field is what this class is for; mypy only sees a narrower base.
    status: api.StatusOutput | Literal["incomplete"]  # type: ignore[assignment]
    incomplete_details: _IncompleteDetails | None = None


def test_sdk_schema_still_lacks_incomplete() -> None:
    """When the SDK learns "incomplete", drop _DocumentedResponse and check against it."""
    assert "incomplete" not in _SDK_STATUSES
    assert "incomplete_details" not in api.ResponsesResponseOutput.model_fields


def test_incomplete_run_is_the_sdk_response_plus_the_documented_fields(
    ask: Ask,
) -> None:
    body = {"model": "perplexity/sonar", "input": "hi", "tools": [{"type": "web_search"}]}
    answer = ask(body, Reply(body=incomplete_answer(body)))
    response = strict(_DocumentedResponse, answer)
    assert response.status == "incomplete"
    assert response.incomplete_details == _IncompleteDetails(reason="max_output_tokens")
    assert parse_response("perplexity", json.dumps(answer).encode()).finish_reason == "length"
