"""A turn's request under changed settings: prompt, persona, model, config, context.

With no changes this is exactly the request the agent built, which is what
``--recorded`` checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import msgspec

from events.model import ChatTurn
from pipeline.config import AppConfig
from pipeline.replay.rebuild import Inputs
from pipeline.request import Request, build_request

ContextMode = Literal["recorded", "replayed"]


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    prompt: str | None = None
    persona: str | None = None
    model: str | None = None
    config: AppConfig | None = None  # replaces the config in force at each turn
    context: ContextMode = "recorded"


def request_for(inputs: Inputs, settings: Settings, answers: Mapping[str, str]) -> Request:
    """The request for ``inputs`` under ``settings``.

    ``answers`` maps call ids to new replies; with ``context="replayed"`` they
    replace the recorded assistant turns of those calls (others stay as recorded).
    """
    config = settings.config or inputs.config
    entity = inputs.entity
    if settings.config is not None:
        # The new config may describe the chat differently; the turn's chat stays the same.
        entity = settings.config.find_entity(inputs.config.entity_jid(entity)) or entity
    if settings.prompt is not None or settings.persona is not None:
        persona, prompt = config.entity_prompt(entity)
        entity = msgspec.structs.replace(
            entity,
            persona=persona if settings.persona is None else settings.persona,
            prompt=prompt if settings.prompt is None else settings.prompt,
        )
    if settings.model is not None:
        config = msgspec.structs.replace(
            config, llm=msgspec.structs.replace(config.llm, model=settings.model)
        )
    context = inputs.context
    if settings.context == "replayed":
        context = _chained(context, inputs.context_calls, answers)
    return build_request(config, entity, context, inputs.text)


def _chained(
    context: list[ChatTurn], calls: list[str], answers: Mapping[str, str]
) -> list[ChatTurn]:
    new_answers = iter(calls)
    chained = []
    for turn in context:
        call = next(new_answers, None) if turn.role == "assistant" else None
        new = answers.get(call) if call is not None else None
        chained.append(turn if new is None else ChatTurn("assistant", new))
    return chained
