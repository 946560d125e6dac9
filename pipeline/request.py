"""The LLM request as a pure function of config, session context and new messages.

The agent and ``replay.py --recorded`` both call ``build_request``, so any
recorded ``LlmRequested`` can be rebuilt from the events before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import msgspec

from events.jid import user_part
from events.model import ChatTurn
from pipeline.config import AppConfig, Entity, LlmConfig
from pipeline.llm.turns import normalize_turns

CUT_MARKER = "\n[… message cut: longer than {limit} characters]"


class Message(Protocol):
    """What the builder reads of an inbound message (a queue item)."""

    @property
    def text(self) -> str: ...
    @property
    def sender(self) -> str: ...
    @property
    def push_name(self) -> str | None: ...
    @property
    def is_group(self) -> bool: ...


class Request(msgspec.Struct, frozen=True, kw_only=True):
    model: str
    params: dict[str, Any]
    messages: list[ChatTurn]


def user_text(messages: Sequence[Message], max_chars: int) -> str:
    """A debounced burst as one user turn; group lines say who wrote them."""
    lines = [
        f"{m.push_name or user_part(m.sender)}: {m.text}" if m.is_group else m.text
        for m in messages
    ]
    text = "\n".join(lines)
    if len(text) > max_chars:
        text = text[:max_chars] + CUT_MARKER.format(limit=max_chars)
    return text


def system_text(persona: str, prompt: str) -> str:
    return "\n\n".join(part for part in (persona.strip(), prompt.strip()) if part)


def llm_params(llm: LlmConfig) -> dict[str, Any]:
    """Everything besides model and messages that shapes the HTTP body."""
    return {
        "temperature": llm.temperature,
        "max_output_tokens": llm.max_output_tokens,
        "web_search": llm.web_search and llm.provider == "perplexity",
    }


def build_request(
    config: AppConfig, entity: Entity, context: Sequence[ChatTurn], new_text: str
) -> Request:
    persona, prompt = config.entity_prompt(entity)
    turns = [ChatTurn("system", system_text(persona, prompt)), *context, ChatTurn("user", new_text)]
    return Request(
        model=config.llm.model, params=llm_params(config.llm), messages=normalize_turns(turns)
    )


def debug_note(entity_name: str, request: Request, persona: str) -> str:
    """What the owner sees before a debugged entity's LLM call."""
    system = next((t.content for t in request.messages if t.role == "system"), "")
    user = request.messages[-1].content
    return (
        f"[debug] {entity_name}\n"
        f"User entry:\n{user}\n\n"
        f"System prompt:\n{system}\n\n"
        f"Persona:\n{persona}"
    )
