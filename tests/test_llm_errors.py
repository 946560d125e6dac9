"""Error classification and retry timing (pure; the HTTP path is in test_llm_client)."""

import json
from email.utils import formatdate

import httpx
import pytest

from pipeline.llm import (
    BadRequest,
    Conflict,
    EndpointRetired,
    Forbidden,
    HttpError,
    KeyRejected,
    LlmError,
    NotFound,
    ParamRefused,
    RateLimited,
    RequestTimeout,
    ServerError,
    parse_response,
)
from pipeline.llm._backoff import backoff_delay, parse_retry_after
from pipeline.llm._errors import error_from_response
from tests.llm_server import RETIRED, canned_error, error_body, html_page, openai_error

NOW = 1_760_000_000.0


def classify(
    status: int,
    body: bytes | dict[str, object] = b"",
    key: str | None = "pplx-secret",
    **headers: str,
) -> LlmError:
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    return error_from_response(status, httpx.Headers(headers), raw, now=NOW, api_key=key)


@pytest.mark.parametrize(
    ("status", "body", "cls", "message", "retryable"),
    [
        (
            400,
            error_body(400, "max_output_tokens must be at least 16", "invalid_parameter"),
            BadRequest,
            "bad request (HTTP 400): max_output_tokens must be at least 16",
            False,
        ),
        (401, html_page(401), KeyRejected, "API key rejected (HTTP 401)", False),
        (
            401,
            error_body(401, "Invalid API key", "authentication_error"),
            KeyRejected,
            "API key rejected (HTTP 401)",
            False,
        ),
        (
            403,
            error_body(403, RETIRED, "chat_completions_not_available"),
            EndpointRetired,
            "Perplexity retired this endpoint (HTTP 403 chat_completions_not_available); "
            "use provider perplexity (Agent API /v1/responses)",
            False,
        ),
        (
            403,
            {"error": {"message": RETIRED, "code": "agent_api_migration_required"}},
            EndpointRetired,
            "Perplexity retired this endpoint (HTTP 403 agent_api_migration_required); "
            "use provider perplexity (Agent API /v1/responses)",
            False,
        ),
        (
            # The type alone reads "forbidden"; the code says the endpoint moved.
            403,
            {
                "error": {
                    "message": RETIRED,
                    "type": "forbidden",
                    "code": "agent_api_migration_required",
                }
            },
            EndpointRetired,
            "Perplexity retired this endpoint (HTTP 403 agent_api_migration_required); "
            "use provider perplexity (Agent API /v1/responses)",
            False,
        ),
        (
            403,
            error_body(403, "Model not available on your plan", "forbidden"),
            Forbidden,
            "forbidden (HTTP 403): Model not available on your plan",
            False,
        ),
        (
            404,
            {"error": "model 'llama9' not found"},
            NotFound,
            "model or endpoint not found (HTTP 404): model 'llama9' not found",
            False,
        ),
        (
            422,
            {"detail": [{"loc": ["body", "messages"], "msg": "field required"}]},
            BadRequest,
            "bad request (HTTP 422): body.messages: field required",
            False,
        ),
        (402, b"", HttpError, "HTTP 402 Payment Required", False),
        (408, b"", RequestTimeout, "server timed out (HTTP 408)", True),
        (409, b"", Conflict, "conflict (HTTP 409)", True),
        (
            429,
            canned_error(429),
            RateLimited,
            "rate limited (HTTP 429): Rate limit exceeded. Please retry later.",
            True,
        ),
        (
            500,
            canned_error(500),
            ServerError,
            "server error (HTTP 500): Internal server error",
            True,
        ),
        (502, canned_error(502), ServerError, "server error (HTTP 502): 502 Bad Gateway", True),
        (
            503,
            b"upstream connect error\n  or disconnect",
            ServerError,
            "server error (HTTP 503): upstream connect error or disconnect",
            True,
        ),
    ],
)
def test_each_status_says_what_is_wrong(
    status: int, body: bytes | dict[str, object], cls: type[LlmError], message: str, retryable: bool
) -> None:
    error = classify(status, body)
    assert type(error) is cls
    assert (str(error), error.status, error.retryable) == (message, status, retryable)


@pytest.mark.parametrize("depth", [1_000, 10_000])
def test_deeply_nested_error_body_is_classified_by_status(depth: int) -> None:
    arrays = b"[" * depth + b"]" * depth
    for body in (arrays, b'{"error": ' + arrays + b"}", b'{"error": {"message": ' + arrays + b"}}"):
        error = classify(403, body)
        assert type(error) is Forbidden
        assert str(error).startswith("forbidden (HTTP 403)")
        assert len(str(error)) < 340


SENT = {"model": "gpt-5", "messages": [], "temperature": 0.2, "max_tokens": 1024}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            openai_error(
                "Unsupported value: 'temperature' does not support 0.2 with this model. "
                "Only the default (1) value is supported.",
                "temperature",
                "unsupported_value",
            ),
            "the model does not accept temperature 0.2 (HTTP 400): "
            "set llm.temperature to null in app.json",
        ),
        (
            openai_error(
                "Unsupported parameter: 'max_tokens' is not supported with this model. "
                "Use 'max_completion_tokens' instead.",
                "max_tokens",
                "unsupported_parameter",
            ),
            "the model does not accept the parameter max_tokens (HTTP 400): "
            "set llm.max_output_tokens to null in app.json",
        ),
        (
            # A proxy that passes OpenAI's message on without param or code.
            {
                "error": {
                    "message": "Unsupported parameter: 'max_tokens' is not supported with "
                    "this model. Use 'max_completion_tokens' instead.",
                    "code": "invalid_request_body",
                }
            },
            "the model does not accept the parameter max_tokens (HTTP 400): "
            "set llm.max_output_tokens to null in app.json",
        ),
    ],
)
def test_refused_parameter_names_the_app_json_setting_in_one_line(
    body: dict[str, object], message: str
) -> None:
    error = error_from_response(
        400, httpx.Headers(), json.dumps(body).encode(), now=NOW, api_key=None, sent=SENT
    )
    assert isinstance(error, ParamRefused)
    assert (str(error), error.retryable) == (message, False)
    assert error.field == ("temperature" if "temperature" in message else "max_tokens")


def test_refused_parameter_we_did_not_send_is_quoted_as_it_is() -> None:
    body = openai_error("Unsupported parameter: 'top_p'.", "top_p", "unsupported_parameter")
    raw = json.dumps(body).encode()
    error = error_from_response(400, httpx.Headers(), raw, now=NOW, api_key=None, sent=SENT)
    assert str(error) == "bad request (HTTP 400): Unsupported parameter: 'top_p'."


def test_401_without_a_configured_key_says_so() -> None:
    assert str(classify(401, html_page(401), key=None)) == (
        "API key rejected (HTTP 401); no API key is configured"
    )


def test_the_key_is_never_echoed() -> None:
    error = classify(400, error_body(400, "bad header Bearer pplx-secret", "invalid_request_error"))
    assert "pplx-secret" not in str(error)
    assert str(error) == "bad request (HTTP 400): bad header Bearer ***"


def test_a_placeholder_key_is_no_secret_to_hide() -> None:
    """Ollama ignores the key; LLM_API_KEY=ollama must not garble its own error messages."""
    body: dict[str, object] = {
        "error": 'model "llama3" not found, try pulling it first (ollama pull llama3)'
    }
    error = classify(404, body, key="ollama")
    assert str(error) == (
        'model or endpoint not found (HTTP 404): model "llama3" not found, '
        "try pulling it first (ollama pull llama3)"
    )


@pytest.mark.parametrize("status", [400, 422, 429, 500, 503])
def test_the_api_s_own_words_stay_out_of_the_logs(status: int) -> None:
    """A proxy may echo the request (the user's text) in its error: events keep it, logs not."""
    said = "Received Messages=[{'role': 'user', 'content': 'my secret plan'}]"
    error = classify(status, error_body(status, said, "invalid_request_error"))

    assert "my secret plan" in str(error)
    assert "my secret plan" not in error.loggable
    assert error.loggable.startswith(str(error).split(": ", 1)[0])


def test_a_failed_run_s_reason_stays_out_of_the_logs() -> None:
    body = {"id": "r1", "status": "failed", "error": {"message": "cannot answer 'my secret plan'"}}
    with pytest.raises(LlmError) as caught:
        parse_response("perplexity", json.dumps(body).encode())
    assert "my secret plan" in str(caught.value)
    assert "my secret plan" not in caught.value.loggable


def test_long_api_messages_are_cut_to_one_line() -> None:
    error = classify(400, error_body(400, "word " * 200, "invalid_request_error"))
    assert len(str(error)) < 340
    assert str(error).endswith("…")


def test_server_can_override_the_retry_decision() -> None:
    assert not classify(503, b"", **{"x-should-retry": "false"}).retryable
    assert classify(400, b"", **{"x-should-retry": "true"}).retryable


def test_retry_after_is_carried_on_the_error() -> None:
    assert classify(429, b"", **{"retry-after": "3"}).retry_after == 3.0
    assert classify(429, b"").retry_after is None


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({}, None),
        ({"retry-after": "2"}, 2.0),
        ({"Retry-After": "1.5"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after-ms": "soon", "retry-after": "9"}, 9.0),
        ({"retry-after": formatdate(NOW + 12, usegmt=True)}, 12.0),
        ({"retry-after": formatdate(NOW - 30, usegmt=True)}, 0.0),
        ({"retry-after": "Wed, 21 Oct 2026 07:28:00 -0000"}, 1792567680.0 - NOW),
        ({"retry-after": "-1"}, None),
        ({"retry-after": "tomorrow"}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], seconds: float | None) -> None:
    assert parse_retry_after(httpx.Headers(headers), NOW) == seconds


def test_backoff_doubles_from_half_a_second_up_to_eight() -> None:
    assert [backoff_delay(n, None, 0.0) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]


def test_jitter_shortens_by_at_most_a_quarter() -> None:
    assert backoff_delay(1, None, 0.999) == pytest.approx(0.75, abs=1e-3)
    assert backoff_delay(1, None, 0.5) == 0.875


def test_server_wait_wins_over_backoff_but_is_capped_at_a_minute() -> None:
    assert backoff_delay(3, 0.0, 0.9) == 0.0
    assert backoff_delay(0, 7.0, 0.9) == 7.0
    assert backoff_delay(0, 3600.0, 0.0) == 60.0
