"""``remember`` and ``forget_fact``: the model keeps facts about the chat across sessions.

A session forgets; a fact ("prefers metric units", "her daughter is Mia")
goes into every later system prompt of the chat under ``Facts:``
(``pipeline.llm.system_text``). Facts are the person's, whichever of their ids
(phone JID, ``@lid``) the chat goes by. They are bounded: at most
``MAX_FACTS`` facts and ``MAX_CHARS`` characters a person; a new fact drops
the oldest, recorded as ``FactForgotten`` (reason ``bound``), so the prompt
never grows without end. Offered where ``tools.memory`` is true.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from events.model import AnyEvent, FactForgotten, FactRemembered
from pipeline.config import AppConfig
from pipeline.toolbox._tool import Result, Scene, Tool, refused
from projections import aliases, facts

MAX_FACTS = 50
MAX_CHARS = 4000
FACT_CHARS = 500


def _applies(config: AppConfig, is_group: bool) -> bool:
    return config.tools.memory


def known(scene: Scene) -> list[facts.Fact]:
    """The facts of the person (or group) this chat is, oldest first."""
    forms = aliases.forms(scene.view.aliases, scene.chat) | {scene.chat}
    return facts.of_person(scene.view.facts, forms)


def _remember(scene: Scene, args: dict[str, Any]) -> Result:
    text = " ".join(str(args["fact"]).split())
    if not text:
        return refused("remember: the fact is empty")
    before = known(scene)
    if any(f.text.casefold() == text.casefold() for f in before):
        return Result(output={"ok": True, "already_known": True})
    kept = [*before, facts.Fact(text=text, chat=scene.chat, seq=0, ts=scene.now)]
    dropped: list[facts.Fact] = []
    while len(kept) > MAX_FACTS or sum(len(f.text) for f in kept) > MAX_CHARS:
        dropped.append(kept.pop(0))  # the new fact is at most FACT_CHARS: it stays
    events: list[AnyEvent] = [FactRemembered(chat=scene.chat, fact=text, call_id=scene.call_id)]
    events += _forgotten(dropped, "bound", scene.call_id)
    output: dict[str, Any] = {"ok": True}
    if dropped:
        output["dropped_oldest"] = [f.text for f in dropped]
    return Result(output=output, events=events)


def _forget_fact(scene: Scene, args: dict[str, Any]) -> Result:
    text = " ".join(str(args["fact"]).split())
    if not text:
        return refused("forget_fact: the text is empty")
    going = [f for f in known(scene) if text.casefold() in f.text.casefold()]
    if not going:
        return refused(f"forget_fact: no fact contains {text!r}")
    events = _forgotten(going, "asked", scene.call_id, text)
    return Result(output={"ok": True, "forgotten": [f.text for f in going]}, events=events)


def _forgotten(
    going: list[facts.Fact], reason: str, call_id: str, text: str = ""
) -> list[AnyEvent]:
    """One ``FactForgotten`` per chat the facts are filed under (a person's PN and LID)."""
    by_chat: dict[str, list[str]] = defaultdict(list)
    for fact in going:
        by_chat[fact.chat].append(fact.text)
    return [
        FactForgotten(
            chat=chat,
            text=text,
            facts=texts,
            reason="bound" if reason == "bound" else "asked",
            call_id=call_id,
        )
        for chat, texts in by_chat.items()
    ]


def _fact_schema(description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "fact": {"type": "string", "description": description, "maxLength": FACT_CHARS}
        },
        "required": ["fact"],
        "additionalProperties": False,
    }


REMEMBER = Tool(
    name="remember",
    description=(
        "Keep a short fact about this chat (a preference, a name, a date) for later "
        "conversations; the chat's facts are given to you under 'Facts:'."
    ),
    parameters=_fact_schema("The fact, in one short sentence."),
    handler=_remember,
    applies=_applies,
)

FORGET = Tool(
    name="forget_fact",
    description="Drop the facts kept about this chat that contain the given text.",
    parameters=_fact_schema("Text the facts to drop contain (case does not matter)."),
    handler=_forget_fact,
    applies=_applies,
)
