"""A fake LLM provider: a real HTTP server on 127.0.0.1 speaking the real shapes.

Paths, as Perplexity and local OpenAI-compatible servers answer them
(research/perplexity.md sections 0, 4, 5, 9):

- ``POST /v1/responses`` (alias ``/v1/agent``): the Agent API, with strict
  body parsing (unknown field -> 400), role alternation and last-turn-is-user
  checks, and a deterministic answer (``agent_answer``).
- ``POST /v1/chat/completions``: an OpenAI-compatible answer, like Ollama/vLLM;
  with ``FakeLlmServer(openai_reasoning=True)`` like OpenAI's GPT-5 and
  o-series instead: ``max_tokens`` and any temperature but 1 get OpenAI's 400,
  and ``REASONING_TOKENS`` of ``max_completion_tokens`` go to thinking.
- ``POST /chat/completions`` and ``/v1/sonar``: Perplexity's retired Sonar
  paths, 403 ``chat_completions_not_available``.
- A wrong or missing bearer key gets openresty's HTML 401 page.

Tests queue replies with ``script(Reply(...), ...)`` (FIFO; a valid request
takes the next one, then the default answer resumes), read ``requests``, and
can hold an answer until they set an Event (``hold()``). As a fixture::

    @pytest.fixture
    def llm_server() -> Iterator[FakeLlmServer]:
        with FakeLlmServer() as server:
            yield server

    def test_x(llm_server):
        llm_server.script(Reply(status=429, headers={"retry-after": "0"}))
        ...  # point the client at llm_server.base_url
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

TEST_KEY = "test-key"
SEARCH_RESULTS = (
    {"url": "https://www.example.com/news/echo", "title": "Echo news"},
    {"url": "https://docs.example.org/guide", "title": "The echo guide"},
)
# Fields the Agent API accepts; anything else is a 400 (research/perplexity.md section 9).
# Exactly the fields of the official SDK's models (tests/test_llm_sdk_fidelity.py
# pins that): a fake stricter than the API would fail bodies the API takes.
AGENT_FIELDS = frozenset(
    [
        "background",
        "effort",
        "input",
        "instructions",
        "language_preference",
        "max_output_tokens",
        "max_steps",
        "model",
        "models",
        "preset",
        "previous_response_id",
        "profile",
        "prompt_cache_key",
        "reasoning",
        "response_format",
        "service_tier",
        "skills",
        "step_budget_reminder",
        "store",
        "stream",
        "temperature",
        "tool_choice",
        "tools",
        "top_p",
    ]
)
_INPUT_FIELDS = frozenset({"role", "content", "type"})
_TOOL_FIELDS = frozenset(
    {
        "type",
        "filters",
        "max_tokens",
        "max_tokens_per_page",
        "search_context_size",
        "search_type",
        "user_location",
    }
)
# What the fake reasoning model spends thinking before it writes (counted in
# max_completion_tokens, as OpenAI counts reasoning tokens).
REASONING_TOKENS = 64
ALTERNATION = (
    "After the (optional) system message(s), user and assistant roles should be alternating."
)
LAST_USER = "Last message must have role `user`."
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


@dataclass(frozen=True)
class Reply:
    """One scripted answer. ``body=None`` means the default answer (status 200)
    or ``canned_error(status)``; a dict is sent as JSON, str/bytes as they are."""

    status: int = 200
    body: dict[str, Any] | str | bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    release: threading.Event | None = None


@dataclass(frozen=True)
class Received:
    """One request as the server saw it; header names are lower-case."""

    method: str
    path: str
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw) if self.raw else None


def _words(text: str) -> int:
    return len(text.split())


def _last_user_text(items: list[dict[str, Any]]) -> str:
    users = [str(item.get("content", "")) for item in items if item.get("role") == "user"]
    return users[-1] if users else ""


def _request_id(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def agent_answer(body: dict[str, Any]) -> dict[str, Any]:
    """The default Agent API answer: "Echo: <last user text>", with two search
    results and total_cost 0.0061 when the web_search tool is on (else 0.0011)."""
    items = (
        body["input"]
        if isinstance(body["input"], list)
        else [{"role": "user", "content": body["input"]}]
    )
    text = f"Echo: {_last_user_text(items)}"
    search = any(tool.get("type") == "web_search" for tool in body.get("tools", []))
    prompt = " ".join([str(body.get("instructions", ""))] + [str(i["content"]) for i in items])
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


def chat_answer(body: dict[str, Any]) -> dict[str, Any]:
    """The default OpenAI-compatible answer: "Echo: <last user text>", no search."""
    messages = body["messages"]
    text = f"Echo: {_last_user_text(messages)}"
    inp = sum(_words(str(m.get("content", ""))) for m in messages)
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


def reasoning_answer(body: dict[str, Any]) -> dict[str, Any]:
    """``chat_answer`` from a model that thinks first: when ``max_completion_tokens``
    leaves no room after thinking, the answer is empty with finish_reason "length"."""
    answer = chat_answer(body)
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


class _Rejected(Exception):
    def __init__(self, status: int, body: dict[str, Any] | bytes) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def _bad(message: str, kind: str = "invalid_request_error") -> _Rejected:
    return _Rejected(400, error_body(400, message, kind))


def _check_fields(obj: Any, allowed: frozenset[str], what: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise _bad(f"invalid request body: json: cannot unmarshal into {what}")
    for key in obj:  # Go's decoder reports the first unknown field in document order
        if key not in allowed:
            raise _bad(f'invalid request body: json: unknown field "{key}"')
    return obj


def check_roles(roles: list[str]) -> None:
    """Perplexity's ordering rules: system first, then alternate, end with user."""
    chat = roles
    while chat and chat[0] in ("system", "developer"):
        chat = chat[1:]
    for previous, current in itertools.pairwise(chat):
        if current == previous or current not in ("user", "assistant"):
            raise _bad(ALTERNATION, "invalid_message")
    if not chat or chat[-1] != "user":
        raise _bad(LAST_USER, "invalid_message")


def validate_agent(raw: Any) -> dict[str, Any]:
    """Reject what the Agent API rejects; return the body when it would be served."""
    body = _check_fields(raw, AGENT_FIELDS, "Go value of type agent.Request")
    if "model" not in body and "preset" not in body:
        raise _bad("one of model or preset is required")
    if "input" not in body:
        raise _bad("input is required")
    if body.get("stream") or body.get("background"):
        raise _bad("the fake server neither streams nor runs in the background")
    items = body["input"]
    if isinstance(items, list):
        for item in items:
            _check_fields(item, _INPUT_FIELDS, "input item")
        check_roles([str(item.get("role")) for item in items])
    elif not isinstance(items, str):
        raise _bad("input must be a string or a list of messages")
    for tool in body.get("tools", []):
        _check_fields(tool, _TOOL_FIELDS, "tool")
    if body.get("max_output_tokens", 16) < 16:
        raise _bad("max_output_tokens must be at least 16", "invalid_parameter")
    if not 0 <= body.get("temperature", 0) <= 2:
        raise _bad("temperature must be between 0 and 2", "invalid_parameter")
    return body


def validate_chat(body: Any) -> dict[str, Any]:
    """Reject what an OpenAI-compatible server rejects (unknown fields are ignored)."""
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        raise _bad("messages is required")
    check_roles([str(m.get("role")) for m in body["messages"]])
    return body


def check_reasoning(body: dict[str, Any]) -> None:
    """What OpenAI's reasoning models refuse that other chat servers take."""
    if "max_tokens" in body:
        message = (
            "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead."
        )
        raise _Rejected(400, openai_error(message, "max_tokens", "unsupported_parameter"))
    temperature = body.get("temperature", 1)
    if temperature != 1:
        message = (
            f"Unsupported value: 'temperature' does not support {json.dumps(temperature)} "
            "with this model. Only the default (1) value is supported."
        )
        raise _Rejected(400, openai_error(message, "temperature", "unsupported_value"))


class FakeLlmServer:
    """The fake provider; a context manager that serves on 127.0.0.1 at an ephemeral port."""

    def __init__(self, api_key: str | None = TEST_KEY, *, openai_reasoning: bool = False) -> None:
        self.api_key = api_key
        self.openai_reasoning = openai_reasoning
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._requests: list[Received] = []
        self._script: deque[Reply] = deque()
        self._gates: list[threading.Event] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release held answers, stop serving and free the port."""
        with self._lock:
            for gate in self._gates:
                gate.set()
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()

    def script(self, *replies: Reply) -> None:
        """Queue replies for the next valid requests, in order."""
        with self._lock:
            self._script.extend(replies)
            self._gates.extend(r.release for r in replies if r.release is not None)

    def hold(self) -> threading.Event:
        """Queue a default answer that waits until the returned Event is set."""
        gate = threading.Event()
        self.script(Reply(release=gate))
        return gate

    @property
    def requests(self) -> list[Received]:
        with self._lock:
            return list(self._requests)

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        """Block until ``count`` requests have arrived (for tests in other threads)."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self._requests) >= count, timeout)

    def _record(self, request: Received) -> None:
        with self._arrived:
            self._requests.append(request)
            self._arrived.notify_all()

    def _next_reply(self) -> Reply:
        with self._lock:
            return self._script.popleft() if self._script else Reply()

    def answer(self, request: Received) -> tuple[Reply, dict[str, Any] | bytes]:
        """Decide the reply and its body for one request (runs on a server thread)."""
        if request.method != "POST":
            return Reply(status=404), error_body(404, "Not Found", "not_found")
        if self.api_key is not None and request.headers.get("authorization") != (
            f"Bearer {self.api_key}"
        ):
            return Reply(status=401, headers={"content-type": "text/html"}), html_page(401)
        try:
            default, body = _route(request, self.openai_reasoning)
        except _Rejected as rejected:
            return Reply(status=rejected.status), rejected.body
        reply = self._next_reply()
        if reply.body is not None:
            payload = reply.body
            return reply, payload.encode() if isinstance(payload, str) else payload
        if reply.status != 200:
            return reply, canned_error(reply.status)
        return reply, default(body)


def _route(
    request: Received, reasoning: bool
) -> tuple[Callable[[dict[str, Any]], dict[str, Any]], dict[str, Any]]:
    """Pick the answering function and validate the body for the request's path."""
    if request.path in ("/chat/completions", "/v1/sonar"):
        raise _Rejected(403, error_body(403, RETIRED, "chat_completions_not_available"))
    if request.path in ("/v1/responses", "/v1/agent"):
        return agent_answer, validate_agent(_parse(request.raw))
    if request.path == "/v1/chat/completions":
        body = validate_chat(_parse(request.raw))
        if not reasoning:
            return chat_answer, body
        check_reasoning(body)
        return reasoning_answer, body
    raise _Rejected(404, error_body(404, "Not Found", "not_found"))


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise _bad(f"invalid request body: {exc}") from None


def _handler_for(server: FakeLlmServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as httpx pools connections
        # Headers and body go out in separate writes: with Nagle on, the body
        # waits for the client's delayed ACK (~40 ms), a stall no real API has.
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            self._serve()

        def do_GET(self) -> None:
            self._serve()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            request = Received(
                method=self.command,
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                raw=self.rfile.read(length),
            )
            server._record(request)
            reply, body = server.answer(request)
            if reply.release is not None:
                reply.release.wait()
            if reply.delay:
                time.sleep(reply.delay)
            data = json.dumps(body).encode() if isinstance(body, dict) else body
            html = data.lstrip().startswith(b"<")
            try:
                self.send_response(reply.status)
                if "content-type" not in {k.lower() for k in reply.headers}:
                    self.send_header("content-type", "text/html" if html else "application/json")
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout, killed daemon); nothing to tell it

    return Handler
