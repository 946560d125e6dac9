"""A call's prompt under changed settings: prompt, persona, model, config, context.

With no changes this is exactly the prompt the agent composed, which is what
``--recorded`` checks: its function tools too, offered as the config in force
says (a new config may offer others).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import msgspec

from events.model import ChatTurn
from pipeline import toolbox
from pipeline.config import AppConfig, ConfigError, Entity, config_from_dict
from pipeline.llm import (
    Formatting,
    Prompt,
    Said,
    compose,
    composed_at,
    group_context,
    pointed_at,
    user_turn,
)
from projections.calls import Call

ContextMode = Literal["recorded", "replayed"]


class Variant(msgspec.Struct, frozen=True, kw_only=True):
    prompt: str | None = None
    persona: str | None = None
    model: str | None = None
    config: AppConfig | None = None  # replaces the config in force at each call
    context: ContextMode = "recorded"


class Unbuildable(Exception):
    """A call whose inputs are gone from the log, or no longer make a prompt."""


def recorded_prompt(call: Call) -> Prompt:
    """The prompt as the agent recorded it."""
    ev = call.request
    return Prompt(model=ev.model, params=ev.params, messages=ev.messages, tools=ev.tools)


def formatting_for(call: Call, variant: Variant) -> Formatting:
    """How the reply's Markdown is written: the variant's config, else the one in force then."""
    if variant.config is not None:
        return variant.config.whatsapp.formatting
    # Validated when it was recorded; a config from before the key existed took the default.
    recorded = (call.inputs.config if call.inputs else {}).get("whatsapp") or {}
    return "plain" if recorded.get("formatting") == "plain" else "whatsapp"


def prompt_for(call: Call, variant: Variant, answers: Mapping[str, str]) -> Prompt:
    """The prompt of ``call`` under ``variant``.

    ``answers`` maps call ids to new replies; with ``context="replayed"`` they
    replace the recorded assistant turns of those calls (others stay as recorded).
    """
    inputs = call.inputs
    if inputs is None:
        raise Unbuildable(call.problem)
    digest = call.request.config_hash[:12]
    try:
        recorded = config_from_dict(inputs.config, source=f"config {digest}")
    except ConfigError as exc:
        raise Unbuildable(str(exc)) from None
    first = inputs.items[0]
    entity = recorded.entity_for(
        call.request.chat, first.message.sender_alt, first.message.is_group
    )
    if entity is None:
        raise Unbuildable(f"config {digest} does not monitor {call.request.chat}")
    # As the agent built it: the group's earlier messages as that config chose them.
    heard, asked = _pointed_at(call, recorded, entity)
    config = variant.config or recorded
    if variant.config is not None:
        # The new config may describe the chat differently; the call's chat stays the same.
        entity = variant.config.find_entity(recorded.entity_jid(entity)) or entity
    if variant.prompt is not None or variant.persona is not None:
        persona, prompt = config.entity_prompt(entity)
        entity = msgspec.structs.replace(
            entity,
            persona=persona if variant.persona is None else variant.persona,
            prompt=prompt if variant.prompt is None else variant.prompt,
        )
    if variant.model is not None:
        config = msgspec.structs.replace(
            config, llm=msgspec.structs.replace(config.llm, model=variant.model)
        )
    context = inputs.context
    if variant.context == "replayed":
        context = _chained(context, inputs.context_calls, answers)
    # As the agent built it: text, transcripts and documents from the log, images from the store.
    turn = user_turn(inputs.items, recorded, heard, asked)
    try:
        kept = inputs.facts if config.tools.memory else []
        composed = compose(config, entity, context, turn, kept, now=_composed_at(call))
    except ValueError as exc:  # no user turn at all
        raise Unbuildable(str(exc)) from None
    offered = toolbox.offered(config, first.message.is_group)
    composed = msgspec.structs.replace(composed, tools=offered)
    return _as_taken(composed, call.request.params, call.request.model)


def config_for(call: Call, variant: Variant) -> AppConfig:
    """The config a call is replayed under (its tools' bound, what a tool reads)."""
    if variant.config is not None:
        return variant.config
    if call.inputs is None:
        raise Unbuildable(call.problem)
    try:
        return config_from_dict(
            call.inputs.config, source=f"config {call.request.config_hash[:12]}"
        )
    except ConfigError as exc:
        raise Unbuildable(str(exc)) from None


def _as_taken(prompt: Prompt, recorded: Mapping[str, Any], model: str) -> Prompt:
    """The fields the model refused when the call was made (``LlmClient.learned``) stay
    refused for the same model: a replay sends the request in the shape the daemon did."""
    refused = recorded.get("refused")
    if not refused or prompt.model != model:
        return prompt
    return msgspec.structs.replace(prompt, params={**prompt.params, "refused": refused})


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


def _pointed_at(call: Call, recorded: AppConfig, entity: Entity) -> tuple[list[Said], list[Said]]:
    """``pointed_at`` as the agent applied it: a call composed before that rule
    (by a version before it) showed what a bare call asks as context."""
    assert call.inputs is not None
    items = call.inputs.items
    chosen = group_context(recorded, entity, call.inputs.heard)
    heard, asked = pointed_at(entity, items, chosen, call.inputs.known)
    if asked:
        before = user_turn(items, recorded, chosen).content
        if any(t.role == "user" and t.content == before for t in call.request.messages):
            return chosen, []
    return heard, asked


def _composed_at(call: Call) -> float | None:
    """The time the call's system turn told the model, so a replay tells the same."""
    system = next((t.content for t in call.request.messages if t.role == "system"), "")
    return composed_at(system)
