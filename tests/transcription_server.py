"""A fake speech-to-text service: real HTTP on 127.0.0.1, OpenAI's transcription shapes.

``POST /v1/audio/transcriptions`` (and ``/audio/transcriptions``, as servers
mounted without ``/v1`` answer) takes the multipart form OpenAI documents:
``file`` (its suffix names the format, as OpenAI reads it), ``model``, optional
``language`` and ``response_format``. The form is parsed for real, from the
raw body, and checked as OpenAI checks it; the answer is ``{"text": …,
"usage": {"type": "duration", "seconds": …}}``. Errors come in OpenAI's JSON
envelope: 401 ``invalid_api_key`` for a wrong key, 400 for a missing model or
a format it does not take, 413 past 25 MB.

It is a ``FakeLlmServer`` (tests/llm_server.py) with another route, so the
same ``script(Reply(...))``, ``hold()``, ``respond(fn)`` and ``requests`` work;
``respond`` gets the parsed form (``Form``) instead of a JSON body.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from typing import Any

from tests.llm_server import TEST_KEY, FakeLlmServer, Received, Reply, openai_error

__all__ = ["FORMATS", "MAX_BYTES", "TEST_KEY", "FakeTranscriptionServer", "Form", "parse_form"]

# The suffixes OpenAI's endpoint takes, in its own error message's order.
FORMATS = ("flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm")
MAX_BYTES = 26_214_400
PATHS = ("/v1/audio/transcriptions", "/audio/transcriptions")


@dataclass(frozen=True)
class Form:
    """A parsed multipart request: the text fields, and the file with its name and type."""

    fields: dict[str, str]
    file: bytes | None
    filename: str | None
    content_type: str | None


def parse_form(request: Received) -> Form:
    """Parse ``multipart/form-data`` from the raw bytes, as a server does."""
    header = request.headers.get("content-type", "")
    if not header.startswith("multipart/form-data"):
        raise ValueError(f"not a multipart form: {header!r}")
    raw = f"Content-Type: {header}\r\n\r\n".encode() + request.raw
    message = BytesParser(policy=policy.HTTP).parsebytes(raw)
    fields: dict[str, str] = {}
    file = filename = content_type = None
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        if name == "file":
            file, filename, content_type = payload, part.get_filename(), part.get_content_type()
        elif isinstance(name, str):
            fields[name] = payload.decode()
    return Form(fields, file, filename, content_type)


def _error(status: int, message: str, code: str | None = None, kind: str = "") -> bytes:
    body = openai_error(message, None, code or "")
    body["error"]["code"] = code
    body["error"]["type"] = kind or "invalid_request_error"
    return json.dumps(body).encode()


class FakeTranscriptionServer(FakeLlmServer):
    """Transcribes nothing: answers ``Heard N bytes`` (or ``respond``'s text) for ``seconds``."""

    def __init__(self, api_key: str | None = TEST_KEY, *, seconds: float = 7.0) -> None:
        super().__init__(api_key)
        self.seconds = seconds

    def forms(self) -> list[Form]:
        """Every transcription request's form, in arrival order."""
        return [parse_form(r) for r in self.requests if r.path in PATHS]

    def answer(self, request: Received) -> tuple[Reply, dict[str, Any] | bytes]:
        if request.path not in PATHS or request.method != "POST":
            return Reply(status=404), _error(404, "Invalid URL", None)
        if self.api_key is not None and request.headers.get("authorization") != (
            f"Bearer {self.api_key}"
        ):
            message = "Incorrect API key provided. You can find your API key at platform."
            return Reply(status=401), _error(401, message, "invalid_api_key")
        if len(request.raw) > MAX_BYTES:
            message = f"Maximum content size limit ({MAX_BYTES}) exceeded"
            return Reply(status=413), _error(413, message, None, "server_error")
        problem = self._problem(request)
        if problem is not None:
            return Reply(status=400), _error(400, problem)
        reply = self._next_reply()
        if reply.body is not None:
            payload = reply.body
            return reply, payload.encode() if isinstance(payload, str) else payload
        if reply.status != 200:
            return reply, _error(
                reply.status, f"scripted error {reply.status}", None, "server_error"
            )
        form = parse_form(request)
        with self._lock:
            responder = self._responder
        text = responder(form.__dict__) if responder is not None else None
        assert form.file is not None
        return reply, {
            "text": text if text is not None else f"Heard {len(form.file)} bytes",
            "usage": {"type": "duration", "seconds": self.seconds},
        }

    def _problem(self, request: Received) -> str | None:
        """OpenAI's 400 for a form it would not take, else None."""
        try:
            form = parse_form(request)
        except ValueError as exc:
            return f"Could not parse multipart form: {exc}"
        if "model" not in form.fields:
            return "you must provide a model parameter"
        if form.file is None or not form.file:
            return "1 validation error for Request\nbody -> file\n  field required"
        suffix = (form.filename or "").rpartition(".")[2].lower()
        if suffix not in FORMATS:
            return f"Invalid file format. Supported formats: {list(FORMATS)}"
        if form.fields.get("response_format", "json") not in ("json", "text", "verbose_json"):
            return "response_format must be one of json, text, verbose_json"
        return None
