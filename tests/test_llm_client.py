"""LlmClient against the fake provider over real HTTP: answers, errors, retries, backoff."""

import base64
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import msgspec
import pytest

from events.model import ChatTurn, Citation, Usage
from pipeline import toolbox
from pipeline.config import LlmConfig
from pipeline.llm import (
    BadRequest,
    ConnectionFailed,
    EndpointRetired,
    KeyRejected,
    LlmClient,
    LlmError,
    LlmResult,
    MalformedResponse,
    RateLimited,
    RunFailed,
    build_request,
)
from tests.llm_server import (
    TEST_KEY,
    FakeLlmServer,
    Reply,
    error_body,
    failed_answer,
    openai_error,
)

pytestmark = pytest.mark.anyio

ASK = [ChatTurn("system", "Be brief."), ChatTurn("user", "What is new?")]
PARAMS: dict[str, Any] = {"temperature": 0.2, "max_output_tokens": 256, "web_search": True}
OPENAI = "https://api.openai.com/v1"


class Recorder:
    """Stands in for the agent's LlmFailed events and for anyio.sleep."""

    def __init__(self) -> None:
        self.failures: list[tuple[str, int | None, int, bool]] = []
        self.errors: list[str] = []
        self.delays: list[float] = []

    async def on_failure(self, error: LlmError, attempt: int, final: bool) -> None:
        self.failures.append((error.kind, error.status, attempt, final))
        self.errors.append(str(error))

    async def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def llm_server() -> Iterator[FakeLlmServer]:
    with FakeLlmServer() as server:
        yield server


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
async def client(llm_server: FakeLlmServer, rec: Recorder) -> AsyncIterator[LlmClient]:
    async with LlmClient(
        provider="perplexity",
        base_url=llm_server.base_url,
        api_key=TEST_KEY,
        timeout=5.0,
        max_retries=2,
        sleep=rec.sleep,
        jitter=lambda: 0.0,
    ) as llm:
        yield llm


async def test_agent_api_answer_over_http(client: LlmClient, llm_server: FakeLlmServer) -> None:
    result = await client.complete("perplexity/sonar", ASK, PARAMS)
    assert result.content == "Echo: What is new?"
    assert result.citations == [
        Citation(url="https://www.example.com/news/echo", title="Echo news"),
        Citation(url="https://docs.example.org/guide", title="The echo guide"),
    ]
    assert result.usage == Usage(input_tokens=5, output_tokens=4, total_tokens=9, cost_usd=0.0061)
    assert result.latency_ms > 0
    [request] = llm_server.requests
    assert (request.method, request.path) == ("POST", "/v1/responses")
    assert request.headers["authorization"] == f"Bearer {TEST_KEY}"
    assert request.headers["content-type"] == "application/json"
    # What went over the wire is exactly what replay rebuilds.
    _, body = build_request("perplexity", "http://x", "perplexity/sonar", ASK, PARAMS)
    assert request.raw == msgspec.json.encode(body)


async def test_openai_provider_against_a_local_v1_server(llm_server: FakeLlmServer) -> None:
    async with LlmClient(
        provider="openai",
        base_url=f"{llm_server.base_url}/v1",
        api_key=TEST_KEY,
        timeout=5,
        max_retries=0,
    ) as llm:
        result = await llm.complete("llama3", ASK, {"temperature": 0.5})
    assert (result.content, result.citations, result.finish_reason) == (
        "Echo: What is new?",
        [],
        "stop",
    )
    assert llm_server.requests[0].json["messages"][0] == {"role": "system", "content": "Be brief."}


class ToFake(httpx.AsyncBaseTransport):
    """Delivers every request to the fake while the client believes it is at ``base_url``.

    The token-limit name follows the host, so OpenAI's own host must be what
    the client sees for the test to prove anything.
    """

    def __init__(self, fake: FakeLlmServer) -> None:
        self._fake = httpx.URL(fake.base_url)
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        fake = self._fake
        request.url = request.url.copy_with(scheme=fake.scheme, host=fake.host, port=fake.port)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.fixture
def reasoning_server() -> Iterator[FakeLlmServer]:
    with FakeLlmServer(openai_reasoning=True) as server:
        yield server


def openai_params(**llm: Any) -> dict[str, Any]:
    """The params the agent records for an app.json ``llm`` section with provider openai."""
    config = LlmConfig(provider="openai", **llm)
    return {
        "temperature": config.temperature,
        "max_output_tokens": config.max_output_tokens,
        "web_search": False,
    }


@asynccontextmanager
async def openai_client(
    server: FakeLlmServer, base_url: str, rec: Recorder
) -> AsyncIterator[LlmClient]:
    """A provider-openai client that believes it talks to ``base_url`` and reaches ``server``."""
    async with (
        httpx.AsyncClient(transport=ToFake(server)) as http,
        LlmClient(
            provider="openai",
            base_url=base_url,
            api_key=TEST_KEY,
            timeout=5,
            max_retries=3,
            http=http,
            sleep=rec.sleep,
        ) as llm,
    ):
        yield llm


async def ask_openai(
    server: FakeLlmServer, base_url: str, params: dict[str, Any], rec: Recorder
) -> LlmResult:
    async with openai_client(server, base_url, rec) as llm:
        return await llm.complete("gpt-5", ASK, params, on_failure=rec.on_failure)


async def test_openai_defaults_work_against_openais_reasoning_models(
    reasoning_server: FakeLlmServer, rec: Recorder
) -> None:
    result = await ask_openai(reasoning_server, OPENAI, openai_params(), rec)
    assert result.content == "Echo: What is new?"
    sent = reasoning_server.requests[0].json
    assert "temperature" not in sent
    assert (sent["max_completion_tokens"], "max_tokens" in sent) == (1024, False)


async def test_a_refused_temperature_is_dropped_once_and_remembered(
    reasoning_server: FakeLlmServer, rec: Recorder
) -> None:
    async with openai_client(reasoning_server, OPENAI, rec) as llm:
        result = await llm.complete(
            "gpt-5", ASK, openai_params(temperature=0.2), on_failure=rec.on_failure
        )
        assert result.content == "Echo: What is new?"
        first, second = (r.json for r in reasoning_server.requests)
        assert (first["temperature"], "temperature" in second) == (0.2, False)
        assert rec.failures == [("bad_request", 400, 1, False)]  # not final: asked again
        assert rec.errors == [
            "the model does not accept temperature 0.2 (HTTP 400): sent again without temperature"
        ]
        # Learned for the process: the next call of this model goes out as it takes it.
        params = llm.learned("gpt-5", openai_params(temperature=0.2))
        assert params["refused"] == ["temperature"]
        assert llm.learned("gpt-4o", openai_params()) == openai_params()
        await llm.complete("gpt-5", ASK, params)
    assert len(reasoning_server.requests) == 3
    assert "temperature" not in reasoning_server.requests[2].json


async def test_max_tokens_refused_behind_a_proxy_is_sent_again_as_max_completion_tokens(
    reasoning_server: FakeLlmServer, rec: Recorder
) -> None:
    """A gateway in front of OpenAI is not OpenAI's host, so max_tokens goes out first;
    with a temperature set too, each refusal is answered once, in turn."""
    proxy = "http://llm-gateway.lan:4000/v1"
    async with openai_client(reasoning_server, proxy, rec) as llm:
        params = openai_params(temperature=0.2)
        result = await llm.complete("gpt-5", ASK, params, on_failure=rec.on_failure)
        assert result.content == "Echo: What is new?"
        assert llm.learned("gpt-5", params)["refused"] == ["max_tokens", "temperature"]
    sent = [r.json for r in reasoning_server.requests]
    assert [
        ("max_tokens" in b, b.get("max_completion_tokens"), "temperature" in b) for b in sent
    ] == [
        (True, None, True),
        (False, 1024, True),
        (False, 1024, False),
    ]
    assert rec.errors == [
        "the model does not accept the parameter max_tokens (HTTP 400): "
        "sent again with max_completion_tokens instead of max_tokens",
        "the model does not accept temperature 0.2 (HTTP 400): sent again without temperature",
    ]
    # Exactly what replay rebuilds from the params the agent would now record.
    _, body = build_request("openai", proxy, "gpt-5", ASK, llm.learned("gpt-5", params))
    assert reasoning_server.requests[-1].raw == msgspec.json.encode(body)


async def test_a_server_refusing_both_caps_is_asked_without_any(
    llm_server: FakeLlmServer, rec: Recorder
) -> None:
    """Each field is dropped once: the loop ends when nothing is left to refuse."""
    for cap in ("max_tokens", "max_completion_tokens"):
        message = f"Unsupported parameter: '{cap}' is not supported with this model."
        llm_server.script(
            Reply(status=400, body=openai_error(message, cap, "unsupported_parameter"))
        )
    async with openai_client(llm_server, "http://llm-gateway.lan:4000/v1", rec) as llm:
        result = await llm.complete("gpt-5", ASK, openai_params(), on_failure=rec.on_failure)
    assert result.content == "Echo: What is new?"
    sent = [r.json for r in llm_server.requests]
    assert [sorted(k for k in b if k.startswith("max_")) for b in sent] == [
        ["max_tokens"],
        ["max_completion_tokens"],
        [],
    ]
    assert [final for *_, final in rec.failures] == [False, False]
    assert rec.errors[-1] == (
        "the model does not accept the parameter max_completion_tokens (HTTP 400): "
        "sent again without max_completion_tokens"
    )


async def test_local_servers_still_get_max_tokens_and_the_temperature_set(
    llm_server: FakeLlmServer, rec: Recorder
) -> None:
    local = "http://127.0.0.1:11434/v1"
    result = await ask_openai(llm_server, local, openai_params(temperature=0.2), rec)
    assert result.content == "Echo: What is new?"
    sent = llm_server.requests[0].json
    assert (sent["temperature"], sent["max_tokens"]) == (0.2, 1024)


async def test_legacy_perplexity_path_is_reported_as_retired_not_bad_key(
    llm_server: FakeLlmServer,
    rec: Recorder,
) -> None:
    async with LlmClient(
        provider="openai", base_url=llm_server.base_url, api_key=TEST_KEY, timeout=5, max_retries=3
    ) as llm:
        with pytest.raises(EndpointRetired, match="use provider perplexity") as info:
            await llm.complete("sonar-pro", ASK, {}, on_failure=rec.on_failure)
    assert "key" not in str(info.value).lower()
    assert rec.failures == [("endpoint_retired", 403, 1, True)]


@pytest.mark.parametrize("key", ["wrong-key", None])
async def test_rejected_key_is_final_and_never_shown(
    llm_server: FakeLlmServer,
    rec: Recorder,
    key: str | None,
) -> None:
    async with LlmClient(
        provider="perplexity", base_url=llm_server.base_url, api_key=key, timeout=5, max_retries=3
    ) as llm:
        with pytest.raises(KeyRejected, match=r"^API key rejected \(HTTP 401\)") as info:
            await llm.complete("m", ASK, {}, on_failure=rec.on_failure)
    assert "wrong-key" not in str(info.value)
    assert rec.failures == [("auth", 401, 1, True)]
    assert ("authorization" in llm_server.requests[0].headers) == (key is not None)


async def test_api_validation_message_is_quoted(client: LlmClient, rec: Recorder) -> None:
    with pytest.raises(BadRequest) as info:
        await client.complete("m", ASK, {"max_output_tokens": 8}, on_failure=rec.on_failure)
    assert str(info.value) == "bad request (HTTP 400): max_output_tokens must be at least 16"
    assert rec.failures == [("bad_request", 400, 1, True)]


async def test_api_key_echoed_by_the_api_is_redacted(
    client: LlmClient, llm_server: FakeLlmServer
) -> None:
    llm_server.script(Reply(status=400, body=error_body(400, f"bad key {TEST_KEY}", "x")))
    with pytest.raises(BadRequest, match=r"bad key \*\*\*$"):
        await client.complete("m", ASK, {})


async def test_transient_failures_are_retried_with_backoff(
    client: LlmClient,
    llm_server: FakeLlmServer,
    rec: Recorder,
) -> None:
    llm_server.script(Reply(status=429), Reply(status=502))
    result = await client.complete("m", ASK, PARAMS, on_failure=rec.on_failure)
    assert result.content == "Echo: What is new?"
    assert rec.failures == [("rate_limited", 429, 1, False), ("server", 502, 2, False)]
    assert rec.delays == [0.5, 1.0]
    assert len(llm_server.requests) == 3
    assert len({r.raw for r in llm_server.requests}) == 1


async def test_retry_after_headers_set_the_delay(
    client: LlmClient,
    llm_server: FakeLlmServer,
    rec: Recorder,
) -> None:
    llm_server.script(
        Reply(status=429, headers={"retry-after": "0"}),
        Reply(status=503, headers={"retry-after-ms": "1500", "retry-after": "9"}),
    )
    await client.complete("m", ASK, PARAMS)
    assert rec.delays == [0.0, 1.5]


async def test_last_error_is_raised_after_max_retries(
    client: LlmClient,
    llm_server: FakeLlmServer,
    rec: Recorder,
) -> None:
    llm_server.script(Reply(status=500), Reply(status=503), Reply(status=429))
    with pytest.raises(RateLimited, match="HTTP 429"):
        await client.complete("m", ASK, PARAMS, on_failure=rec.on_failure)
    assert rec.failures == [
        ("server", 500, 1, False),
        ("server", 503, 2, False),
        ("rate_limited", 429, 3, True),
    ]
    assert rec.delays == [0.5, 1.0]


async def test_jitter_is_drawn_per_retry(llm_server: FakeLlmServer, rec: Recorder) -> None:
    draws = iter([0.5, 0.0])
    llm_server.script(Reply(status=500), Reply(status=500))
    async with LlmClient(
        provider="perplexity",
        base_url=llm_server.base_url,
        api_key=TEST_KEY,
        timeout=5,
        max_retries=2,
        sleep=rec.sleep,
        jitter=lambda: next(draws),
    ) as llm:
        await llm.complete("m", ASK, {})
    assert rec.delays == [0.5 * 0.875, 1.0]


_DEPTH = 10_000
# One scripted answer, one final error that names it (never a crash, never retried).
FINAL_ANSWERS = {
    "a failed run": (
        Reply(body=failed_answer("Search backend unavailable", "failed")),
        RunFailed,
        "the LLM run failed: Search backend unavailable",
        ("run_failed", 200, 1, True),
    ),
    "a cancelled run": (
        Reply(body=failed_answer("Search backend unavailable", "cancelled")),
        RunFailed,
        "the LLM run cancelled: Search backend unavailable",
        ("run_failed", 200, 1, True),
    ),
    "malformed JSON": (
        Reply(body='{"id": "resp_1", "output": [', headers={"content-type": "application/json"}),
        MalformedResponse,
        "not JSON",
        ("malformed", 200, 1, True),
    ),
    # In a field the client ignores, so only the JSON parser ever sees the depth.
    "an answer nested 10,000 deep": (
        Reply(body=b'{"output": [], "x": ' + b"[" * _DEPTH + b"]" * _DEPTH + b"}"),
        MalformedResponse,
        r"^malformed LLM response: ",
        ("malformed", 200, 1, True),
    ),
}


@pytest.mark.parametrize(
    ("answer", "error", "says", "recorded"), FINAL_ANSWERS.values(), ids=FINAL_ANSWERS
)
async def test_an_answer_the_client_cannot_use_is_one_final_error(  # noqa: PLR0917
    client: LlmClient,
    llm_server: FakeLlmServer,
    rec: Recorder,
    answer: Reply,
    error: type[Exception],
    says: str,
    recorded: tuple[str, int, int, bool],
) -> None:
    llm_server.script(answer)
    with pytest.raises(error, match=says):
        await client.complete("m", ASK, {}, on_failure=rec.on_failure)
    assert rec.failures == [recorded]
    assert len(llm_server.requests) == 1


async def test_slow_answer_times_out_and_is_retried(
    llm_server: FakeLlmServer,
    rec: Recorder,
) -> None:
    gate = llm_server.hold()
    async with LlmClient(
        provider="perplexity",
        base_url=llm_server.base_url,
        api_key=TEST_KEY,
        timeout=0.2,
        max_retries=1,
        sleep=rec.sleep,
    ) as llm:
        result = await llm.complete("m", ASK, {}, on_failure=rec.on_failure)
    gate.set()
    assert result.content == "Echo: What is new?"
    assert rec.failures == [("timeout", None, 1, False)]


async def test_held_answer_is_served_when_released(
    client: LlmClient, llm_server: FakeLlmServer
) -> None:
    gate = llm_server.hold()
    async with anyio.create_task_group() as tg:
        done = anyio.Event()

        async def call() -> None:
            await client.complete("m", ASK, {})
            done.set()

        tg.start_soon(call)
        assert await anyio.to_thread.run_sync(llm_server.wait_for_requests, 1)
        assert not done.is_set()
        gate.set()
        with anyio.fail_after(5):
            await done.wait()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_refused_connection_is_retryable(rec: Recorder) -> None:
    async with LlmClient(
        provider="perplexity",
        base_url=f"http://127.0.0.1:{closed_port()}",
        api_key=TEST_KEY,
        timeout=2,
        max_retries=1,
        sleep=rec.sleep,
        jitter=lambda: 0.0,
    ) as llm:
        with pytest.raises(ConnectionFailed, match=r"cannot reach http://127\.0\.0\.1:"):
            await llm.complete("m", ASK, {}, on_failure=rec.on_failure)
    assert rec.failures == [("connection", None, 1, False), ("connection", None, 2, True)]
    assert rec.delays == [0.5]


PROXY_PASSWORD = "Pw-proxy-9f8e7d6c"


async def test_errors_name_the_url_without_its_password(
    llm_server: FakeLlmServer, rec: Recorder
) -> None:
    """A base URL behind an authenticating proxy (user:PASSWORD@): the request carries the
    password, the errors (recorded as LlmFailed, logged) show ``user:***@``."""
    creds = f"http://proxyuser:{PROXY_PASSWORD}@"
    with socket.socket() as silent:  # connects, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        for base_url in (
            f"{creds}127.0.0.1:{closed_port()}",
            f"{creds}127.0.0.1:{port}",
            llm_server.base_url.replace("http://", creds),
        ):
            async with LlmClient(
                provider="perplexity", base_url=base_url, api_key=None, timeout=0.2, max_retries=0
            ) as llm:
                with pytest.raises(LlmError):
                    await llm.complete("m", ASK, {}, on_failure=rec.on_failure)
    assert [kind for kind, *_ in rec.failures] == ["connection", "timeout", "auth"]
    assert rec.errors[0].startswith("cannot reach http://proxyuser:***@127.0.0.1:")
    assert rec.errors[1].startswith(f"no answer from http://proxyuser:***@127.0.0.1:{port}/")
    assert all(PROXY_PASSWORD not in error for error in rec.errors)
    [request] = llm_server.requests
    sent = base64.b64decode(request.headers["authorization"].removeprefix("Basic "))
    assert sent == f"proxyuser:{PROXY_PASSWORD}".encode()


@pytest.mark.parametrize(
    "base_url",
    [
        "localhost:11434",  # no scheme: refused when sent
        "http://localhost:port",  # refused when parsed (each URL is parsed once, then reused)
    ],
)
async def test_invalid_base_url_is_final(rec: Recorder, base_url: str) -> None:
    async with LlmClient(
        provider="openai", base_url=base_url, api_key=None, timeout=2, max_retries=3
    ) as llm:
        with pytest.raises(BadRequest, match="invalid LLM base_url"):
            await llm.complete("m", ASK, {}, on_failure=rec.on_failure)
    assert rec.failures == [("bad_request", None, 1, True)]


async def test_unbuildable_request_is_reported_once(client: LlmClient, rec: Recorder) -> None:
    with pytest.raises(BadRequest, match=r"cannot build LLM request: .*at least one user turn"):
        await client.complete("m", [ChatTurn("assistant", "hi")], {}, on_failure=rec.on_failure)
    assert rec.failures == [("bad_request", None, 1, True)]


async def test_injected_http_client_is_left_open(llm_server: FakeLlmServer) -> None:
    async with httpx.AsyncClient() as http:
        async with LlmClient(
            provider="perplexity",
            base_url=llm_server.base_url,
            api_key=TEST_KEY,
            timeout=5,
            max_retries=0,
            http=http,
        ) as llm:
            await llm.complete("m", ASK, {})
        assert not http.is_closed
        await LlmClient(
            provider="perplexity",
            base_url=llm_server.base_url,
            api_key=TEST_KEY,
            timeout=5,
            max_retries=0,
            http=http,
        ).complete("m", ASK, {})


def test_unknown_provider_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="unknown LLM provider 'sonar'"):
        LlmClient(provider="sonar", base_url="http://h", api_key=None, timeout=1, max_retries=0)


async def test_a_server_without_function_calling_is_asked_again_without_tools(
    llm_server: FakeLlmServer, rec: Recorder
) -> None:
    """Ollama answers a model that cannot call functions with a 400 naming no param."""
    refusal = {
        "error": {
            "message": "registry.ollama.ai/library/gemma:2b does not support tools",
            "type": "api_error",
            "param": None,
            "code": None,
        }
    }
    llm_server.script(Reply(status=400, body=refusal))
    tools = toolbox.specs(["stay_silent"])
    async with openai_client(llm_server, "http://127.0.0.1:11434/v1", rec) as llm:
        result = await llm.complete("gemma:2b", ASK, {}, on_failure=rec.on_failure, tools=tools)
        assert llm.learned("gemma:2b", {})["refused"] == ["tools"]
    assert result.content == "Echo: What is new?"
    first, second = (r.json for r in llm_server.requests)
    assert ("tools" in first, "tools" in second) == (True, False)
    assert rec.errors == [
        "the model does not accept the parameter tools (HTTP 400): sent again without tools"
    ]
