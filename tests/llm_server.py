"""A fake LLM provider: a real HTTP server on 127.0.0.1 speaking the real shapes.

Paths, as Perplexity and local OpenAI-compatible servers answer them
(docs/llm.md):

- ``POST /v1/responses`` (alias ``/v1/agent``): the Agent API, with strict
  body parsing (unknown field -> 400), role alternation and last-turn-is-user
  checks, and a deterministic answer (``agent_answer``).
- ``POST /v1/chat/completions``: an OpenAI-compatible answer, like Ollama/vLLM;
  with ``FakeLlmServer(openai_reasoning=True)`` like OpenAI's GPT-5 and
  o-series instead: ``max_tokens`` and any temperature but 1 get OpenAI's 400,
  and ``REASONING_TOKENS`` of ``max_completion_tokens`` go to thinking.
- ``POST /chat/completions`` and ``/v1/sonar``: Perplexity's retired Sonar
  paths, 403 ``chat_completions_not_available``.
- ``POST /v1/audio/speech``: OpenAI's text to speech (tests/speech_shapes.py),
  answering real Ogg Opus (``speech_audio``); ``script_speech`` queues its
  replies apart from the LLM's, ``speeches()`` reads what was asked.
- A wrong or missing bearer key gets openresty's HTML 401 page.
- A user turn may be content parts (docs/llm.md, "Images"): ``input_text`` and
  ``input_image`` for the Agent API, ``text`` and ``image_url`` for chat
  completions; every image must be a data URL whose bytes are the image type
  it names (JPEG, PNG, GIF or WebP), else OpenAI's 400 ``invalid_image_format``.

Tests queue replies with ``script(Reply(...), ...)`` (FIFO; a valid request
takes the next one, then the default answer resumes), read ``requests``, and
can hold an answer until they set an Event (``hold()``). ``respond(fn)``
picks the answer text per request instead of "Echo: …"; with
``judge_question`` and ``verdict`` it plays ``replay.py --judge``'s judge
(consistent, position-biased, unreadable: whatever a test needs). As a fixture::

    @pytest.fixture
    def llm_server() -> Iterator[FakeLlmServer]:
        with FakeLlmServer() as server:
            yield server

    def test_x(llm_server):
        llm_server.script(Reply(status=429, headers={"retry-after": "0"}))
        ...  # point the client at llm_server.base_url
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import itertools
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

from pipeline.llm import composed_at
from pipeline.llm._prompt import NOW_HEADING
from tests.llm_shapes import (
    REASONING_TOKENS,
    RETIRED,
    SEARCH_RESULTS,
    agent_answer,
    agent_calls,
    canned_error,
    chat_answer,
    chat_calls,
    content_text,
    error_body,
    failed_answer,
    html_page,
    incomplete_answer,
    openai_error,
    reasoning_answer,
)
from tests.speech_shapes import (
    FORMATS,
    SPEECH_AUDIO,
    SPEECH_PATHS,
    speech_error,
    speech_problem,
)

# The answers live in tests/llm_shapes.py; tests import them from here too.
__all__ = [
    "AGENT_FIELDS",
    "ALTERNATION",
    "CALL_FIELDS",
    "FUNCTION_FIELDS",
    "INPUT_FIELDS",
    "LAST_USER",
    "OUTPUT_FIELDS",
    "REASONING_TOKENS",
    "RETIRED",
    "SEARCH_RESULTS",
    "TEST_KEY",
    "TOOL_FIELDS",
    "FakeLlmServer",
    "Received",
    "Reply",
    "agent_answer",
    "agent_calls",
    "canned_error",
    "chat_answer",
    "chat_calls",
    "check_image_url",
    "check_images",
    "check_reasoning",
    "check_roles",
    "content_text",
    "error_body",
    "failed_answer",
    "html_page",
    "incomplete_answer",
    "openai_error",
    "reasoning_answer",
    "validate_agent",
    "validate_chat",
]

TEST_KEY = "test-key"
# Fields the Agent API accepts; anything else is a 400 (docs/llm.md).
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
INPUT_FIELDS = frozenset({"role", "content", "type"})
# The SDK's FunctionCallInputInput, FunctionCallOutputInputInput and FunctionToolInput.
CALL_FIELDS = frozenset({"arguments", "call_id", "name", "thought_signature", "type"})
OUTPUT_FIELDS = frozenset(
    {"call_id", "id", "name", "output", "status", "thought_signature", "type"}
)
FUNCTION_FIELDS = frozenset({"description", "name", "parameters", "strict", "type"})
TOOL_FIELDS = frozenset(
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
ALTERNATION = (
    "After the (optional) system message(s), user and assistant roles should be alternating."
)
LAST_USER = "Last message must have role `user`."


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


_IMAGE_MAGIC = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}
_DATA_URL = re.compile(r"data:(image/[a-z]+);base64,(.*)", re.S)
# Agent API content parts and their fields (the SDK's InputContentPartInput).
_AGENT_PARTS = {"input_text": {"type", "text"}, "input_image": {"type", "image_url"}}


def _bad_image(detail: str) -> _Rejected:
    message = (
        "You uploaded an unsupported image. Please make sure your image has of one the "
        f"following formats: ['png', 'jpeg', 'gif', 'webp']. ({detail})"
    )
    return _Rejected(400, openai_error(message, None, "invalid_image_format"))


def check_image_url(url: Any) -> bytes:
    """The image bytes of a data URL, or the 400 a provider answers to a bad one."""
    found = _DATA_URL.fullmatch(url) if isinstance(url, str) else None
    if found is None:
        raise _bad_image("not a data URL")
    mime, data = found.groups()
    try:
        image = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise _bad_image("not base64") from None
    if not image.startswith(_IMAGE_MAGIC.get(mime, (b"\0never",))):
        raise _bad_image(f"the bytes are not {mime}")
    return image


def check_images(content: Any, shape: str) -> list[bytes]:
    """Validate a turn's content parts; returns the images they carry."""
    if isinstance(content, str):
        return []
    if not isinstance(content, list) or not content:
        raise _bad("content must be a string or a non-empty list of parts")
    images = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if shape == "agent":
            if kind not in _AGENT_PARTS:
                raise _bad(f"invalid content part type {kind!r}")
            _check_fields(part, frozenset(_AGENT_PARTS[kind]), "content part")
            if kind == "input_image":
                images.append(check_image_url(part.get("image_url")))
        elif kind == "image_url":
            images.append(check_image_url((part.get("image_url") or {}).get("url")))
        elif kind != "text" or not isinstance(part.get("text"), str):
            raise _bad(f"invalid content part {part!r:.60}")
    return images


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
        messages = _check_agent_calls(items)
        for item in messages:
            _check_fields(item, INPUT_FIELDS, "input item")
            check_images(item.get("content"), "agent")
        check_roles([str(item.get("role")) for item in messages])
    elif not isinstance(items, str):
        raise _bad("input must be a string or a list of messages")
    for tool in body.get("tools", []):
        function = isinstance(tool, dict) and tool.get("type") == "function"
        _check_fields(tool, FUNCTION_FIELDS if function else TOOL_FIELDS, "tool")
        if function and not isinstance(tool.get("name"), str):
            raise _bad("a function tool needs a name")
    if body.get("max_output_tokens", 16) < 16:
        raise _bad("max_output_tokens must be at least 16", "invalid_parameter")
    if not 0 <= body.get("temperature", 0) <= 2:
        raise _bad("temperature must be between 0 and 2", "invalid_parameter")
    return body


def _check_agent_calls(items: list[Any]) -> list[Any]:
    """The ``function_call``/``function_call_output`` items: fields as the SDK's, each
    output answering an earlier call. Returns the message items, which the roles rule."""
    calls: set[str] = set()
    messages = []
    for item in items:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "function_call":
            _check_fields(item, CALL_FIELDS, "function call")
            if not all(isinstance(item.get(k), str) for k in ("call_id", "name", "arguments")):
                raise _bad("a function_call needs call_id, name and arguments (a string)")
            calls.add(item["call_id"])
        elif kind == "function_call_output":
            _check_fields(item, OUTPUT_FIELDS, "function call output")
            if item.get("call_id") not in calls:
                raise _bad(f"no function_call with call_id {item.get('call_id')!r}")
        else:
            messages.append(item)
    return messages


def _check_chat_calls(messages: list[Any]) -> list[Any]:
    """After the turns, rounds of an assistant message with ``tool_calls`` and one
    ``tool`` message per call (OpenAI's 400 otherwise). Returns the turns before them."""
    start = next(
        (i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("tool_calls")),
        len(messages),
    )
    waiting: list[str] = []
    for message in messages[start:]:
        if message.get("role") == "tool":
            if message.get("tool_call_id") not in waiting:
                raise _bad("a tool message must answer a preceding tool_calls entry")
            waiting.remove(message["tool_call_id"])
        elif message.get("role") == "assistant" and message.get("tool_calls") and not waiting:
            waiting = [call["id"] for call in message["tool_calls"]]
        else:
            raise _bad(
                "An assistant message with 'tool_calls' must be followed by tool messages "
                "responding to each 'tool_call_id'."
            )
    if waiting:
        raise _bad(f"tool_call_ids did not have response messages: {', '.join(waiting)}")
    return messages[:start]


def validate_chat(body: Any) -> dict[str, Any]:
    """Reject what an OpenAI-compatible server rejects (unknown fields are ignored)."""
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        raise _bad("messages is required")
    for message in body["messages"]:
        if isinstance(message, dict) and not (
            message.get("tool_calls") and not message.get("content")
        ):
            check_images(message.get("content"), "chat")
    turns = _check_chat_calls(body["messages"])
    check_roles([str(m.get("role")) for m in turns])
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


Responder = Callable[[dict[str, Any]], str | None]


# -- replay.py's judge, as this server sees it -------------------------------

_QUOTED = r"<<<\n(.*?)\n>>>"
_LATEST = re.compile(r"The latest message:\n(.*?)\n\nReply A:", re.S)
_PAIR = re.compile(rf"Reply A:\n{_QUOTED}\n\nReply B:\n{_QUOTED}", re.S)
_REFERENCE = re.compile(rf"answered this chat by hand[^\n]*\n{_QUOTED}", re.S)


@dataclass(frozen=True)
class JudgeQuestion:
    """A judge request of ``replay.py --judge``: the two replies as shown, A first."""

    latest: str  # the user's message the replies answer
    a: str
    b: str
    reference: str | None  # the owner's own reply, when the judge was shown one
    repair: bool  # asked again because the previous answer could not be read


def untimed(system: str) -> str:
    """A system turn without its last line, the time it was composed at (``Now: …``),
    which changes from turn to turn."""
    return system.rpartition(NOW_HEADING)[0] if composed_at(system) is not None else system


def judge_question(body: dict[str, Any]) -> JudgeQuestion | None:
    """The judge question in an Agent API or chat-completions body; None for other requests."""
    turns = body.get("input") if "input" in body else body.get("messages")
    if not isinstance(turns, list):
        return None
    first_user = next((str(t.get("content", "")) for t in turns if t.get("role") == "user"), "")
    pair, latest = _PAIR.search(first_user), _LATEST.search(first_user)
    if pair is None or latest is None:
        return None
    reference = _REFERENCE.search(first_user)
    return JudgeQuestion(
        latest=latest.group(1),
        a=pair.group(1),
        b=pair.group(2),
        reference=reference.group(1) if reference else None,
        repair=sum(t.get("role") == "user" for t in turns) > 1,
    )


def verdict(answer: str, reason: str = "scripted") -> str:
    """A judge answer in the JSON shape replay.py asks for (``answer``: A, B or tie)."""
    return json.dumps({"verdict": answer, "reason": reason})


class FakeLlmServer:
    """The fake provider; a context manager that serves on 127.0.0.1 at an ephemeral port."""

    def __init__(self, api_key: str | None = TEST_KEY, *, openai_reasoning: bool = False) -> None:
        self.api_key = api_key
        self.openai_reasoning = openai_reasoning
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._requests: list[Received] = []
        self._connections = 0  # open now: a client's pool keeps them between requests
        self._script: deque[Reply] = deque()
        self._gates: list[threading.Event] = []
        self._responder: Responder | None = None
        self._speech_script: deque[Reply] = deque()
        self.speech_audio = SPEECH_AUDIO  # what /v1/audio/speech answers
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

    def respond(self, responder: Responder | None) -> None:
        """Answer texts from ``responder(body)`` (None: the default answer) for every
        valid request that no scripted reply gives a body or an error status to."""
        with self._lock:
            self._responder = responder

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

    def wait_for_connections(self, count: int, timeout: float = 5.0) -> bool:
        """Block until exactly ``count`` client connections are open."""
        with self._arrived:
            return self._arrived.wait_for(lambda: self._connections == count, timeout)

    def _connected(self, change: int) -> None:
        with self._arrived:
            self._connections += change
            self._arrived.notify_all()

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
        if request.path in SPEECH_PATHS:
            return self._speech(request)
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
        with self._lock:
            responder = self._responder
        return reply, default(body, responder(body) if responder is not None else None)

    def script_speech(self, *replies: Reply) -> None:
        """Queue replies for the next valid speech requests, in order (apart from the
        LLM's: a test of a spoken reply need not count the calls before it)."""
        with self._lock:
            self._speech_script.extend(replies)
            self._gates.extend(r.release for r in replies if r.release is not None)

    def speeches(self) -> list[dict[str, Any]]:
        """The body of every speech request, in arrival order."""
        return [r.json for r in self.requests if r.path in SPEECH_PATHS]

    def _speech(self, request: Received) -> tuple[Reply, dict[str, Any] | bytes]:
        body, problem = speech_problem(request.raw)
        if problem is not None:
            return Reply(status=400), speech_error(problem)
        with self._lock:
            reply = self._speech_script.popleft() if self._speech_script else Reply()
            audio = self.speech_audio
        if reply.body is not None:
            payload = reply.body
            return reply, payload.encode() if isinstance(payload, str) else payload
        if reply.status != 200:
            return reply, canned_error(reply.status)
        kind = FORMATS[body.get("response_format", "mp3")]
        return dataclasses.replace(reply, headers={"content-type": kind, **reply.headers}), audio


def _route(
    request: Received, reasoning: bool
) -> tuple[Callable[[dict[str, Any], str | None], dict[str, Any]], dict[str, Any]]:
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

        def setup(self) -> None:
            super().setup()
            server._connected(1)

        def finish(self) -> None:
            server._connected(-1)
            super().finish()

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
