"""What a tool is: a name, a description, a JSON schema and a pure handler.

A handler reads only its ``Scene`` (the view, the chat, now, the config in
force) and the arguments, already checked against its schema, and returns a
``Result``: the output the model gets back and the events that are the tool's
effect. It does no I/O, so running it is recording its events: the turn
appends the call, its result and its effects in one commit, and a restart can
neither run a tool twice nor lose what it did (docs/llm.md, "Tools").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from events.model import AnyEvent
from pipeline.config import AppConfig
from projections.fold import States


@dataclass(frozen=True, slots=True)
class Scene:
    """Where a tool runs: the view, the chat it was called in, now and the config."""

    view: States
    chat: str
    now: float
    config: AppConfig
    tool_call_id: str = ""  # the call's id on the wire: a stable seed for ids it makes
    call_id: str = ""  # the LLM call that made it (its request's ``call_id``)


@dataclass(frozen=True, slots=True)
class Result:
    """What a call returns to the model (``output``, sent as JSON) and the events it
    records. ``error``: the call was refused. ``silent``: the turn ends without a
    reply, for this reason (``stay_silent``)."""

    output: Any
    events: list[AnyEvent] = field(default_factory=list)
    error: bool = False
    silent: str | None = None


def output_text(output: Any) -> str:
    """A result as the model gets it and the log keeps it: compact JSON, keys sorted,
    so the daemon and a replay send the same bytes for the same result."""
    return json.dumps(output, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def refused(why: str) -> Result:
    """An error result the model can read and relay: ``{"error": why}``."""
    return Result(output={"error": why}, error=True)


Handler = Callable[[Scene, dict[str, Any]], Result]
# Whether a tool is offered: the config in force and whether the chat is a group.
Applies = Callable[[AppConfig, bool], bool]


@dataclass(frozen=True, slots=True)
class Tool:
    """One function tool: what the model is told (name, description, parameters)
    and what runs when it calls it."""

    name: str
    description: str
    parameters: dict[str, Any]
    handler: Handler
    applies: Applies

    def spec(self) -> dict[str, Any]:
        """The definition sent to the model (the wire wraps it per provider)."""
        return {"name": self.name, "description": self.description, "parameters": self.parameters}
