"""OpenAI's ``POST /v1/audio/speech`` as the fake LLM server answers it.

The body is checked as OpenAI checks it (JSON; ``model``, ``input`` and
``voice`` required; ``input`` at most 4096 characters; ``response_format``
one of OpenAI's; no unknown field) and the answer is the audio itself: by
default ``tests/fixtures/speech.ogg``, 1.5 s of real Ogg Opus that
``tests/make_speech_fixture.py`` wrote with libopus.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.llm_shapes import openai_error

SPEECH_PATHS = ("/v1/audio/speech", "/audio/speech")
SPEECH_AUDIO = (Path(__file__).parent / "fixtures" / "speech.ogg").read_bytes()
SPEECH_SECONDS = 1.5  # the fixture's length, as its Ogg pages say
MAX_INPUT = 4096
FORMATS = {"mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac", "flac": "audio/flac",
           "wav": "audio/wav", "pcm": "audio/pcm"}  # fmt: skip
_FIELDS = frozenset({"model", "input", "voice", "response_format", "speed", "instructions"})


def speech_problem(raw: bytes) -> tuple[dict[str, Any], str | None]:
    """The parsed body, and OpenAI's 400 message for it (None: it would take it)."""
    try:
        body = json.loads(raw)
    except ValueError as exc:
        return {}, f"We could not parse the JSON body of your request. ({exc})"
    if not isinstance(body, dict):
        return {}, "The request body must be a JSON object."
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        return body, f"Unrecognized request argument supplied: {unknown[0]}"
    for name in ("model", "input", "voice"):
        if not isinstance(body.get(name), str) or not body[name]:
            return body, f"Missing required parameter: '{name}'."
    if len(body["input"]) > MAX_INPUT:
        return body, f"'input' is too long: at most {MAX_INPUT} characters."
    if body.get("response_format", "mp3") not in FORMATS:
        return body, f"Invalid value for 'response_format': {body['response_format']!r}."
    return body, None


def speech_error(message: str) -> dict[str, Any]:
    return openai_error(message, None, "invalid_request_error")
