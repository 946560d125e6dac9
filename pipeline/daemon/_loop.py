"""A turn's tool loop, as pure functions: what a round of tool calls comes to.

When the model answers with function calls, ``called`` runs each (the tools'
handlers are pure: their effect is the events they return) and plans, in one
commit, the answer, every call and its result, the tools' effects and then
either the end of the turn (``stay_silent``: ``ReplyWithheld``) or the next
round's ``LlmRequested``, recorded before it goes out. A restart finds all of
that or none of it: no tool runs twice, and a turn cut between rounds asks its
latest round again as recorded (``_turn.again``), never composing it anew.

``tools.max_rounds`` bounds the rounds of calls; the request after the last
one offers no tools, so the model must answer in words. Should it still call
tools, its calls are not run and the turn ends on its text, or, without any,
as a final failure that says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from events.model import (
    AnyEvent,
    LlmCompleted,
    LlmRequested,
    ReplyWithheld,
    ToolCalled,
    ToolFinished,
    ToolRound,
)
from pipeline import toolbox
from pipeline.llm import LlmResult, Prompt
from projections.fold import after

# Why a turn ends with no reply when the model, offered no (more) tools, still called them.
PAST_THE_BOUND = "the LLM kept calling tools after tools.max_rounds rounds and wrote no answer"
UNOFFERED = "the LLM called tools though none were offered, and wrote no answer"
Line = tuple[str, dict[str, str]]


@dataclass(frozen=True, slots=True)
class Called:
    """What a round of calls comes to: the events, the log lines, and the next
    round's request (None: the turn ended, the model stayed silent)."""

    events: list[AnyEvent]
    lines: list[Line] = field(default_factory=list)
    next: LlmRequested | None = None


def prompt_of(request: LlmRequested) -> Prompt:
    """The prompt a recorded request sends, its tools and earlier rounds included."""
    return Prompt(
        model=request.model,
        params=request.params,
        messages=request.messages,
        tools=request.tools,
        rounds=request.rounds,
    )


def runs_tools(request: LlmRequested, result: LlmResult) -> bool:
    """The answer is a round of the loop: it called tools, and tools were offered."""
    return bool(result.tool_calls) and bool(request.tools)


def no_answer(request: LlmRequested, result: LlmResult) -> str:
    """Why an answer without text ends the turn with no reply."""
    if not result.tool_calls:
        return "the LLM answered with no text"
    return PAST_THE_BOUND if request.rounds else UNOFFERED


def called(
    scene: toolbox.Scene,
    request: LlmRequested,
    completed: LlmCompleted,
    result: LlmResult,
    max_rounds: int,
) -> Called:
    """The answer to ``request`` called tools: record each call and its result, then
    end the turn (a reply withheld) or ask the next round."""
    chat, call_id = request.chat, request.call_id
    events: list[AnyEvent] = [msgspec.structs.replace(completed, tool_calls=result.tool_calls)]
    lines: list[Line] = []
    outputs: list[str] = []
    silent: str | None = None
    view = scene.view
    for call in result.tool_calls:
        at = toolbox.Scene(view, chat, scene.now, scene.config, call.id, call_id)
        done = toolbox.run(at, call, request.tools)
        # The next call of the same answer sees this one's effects: a second reminder
        # takes another id, a fact remembered twice is known the second time.
        view = after(view, done.events, scene.now)
        output = toolbox.output_text(done.output)
        outputs.append(output)
        events += [
            ToolCalled(
                chat=chat,
                call_id=call_id,
                tool_call_id=call.id,
                name=call.name,
                arguments=call.arguments,
                round=len(request.rounds) + 1,
            ),
            ToolFinished(
                chat=chat,
                call_id=call_id,
                tool_call_id=call.id,
                name=call.name,
                output=output,
                error=done.error,
            ),
            *done.events,
        ]
        told = "error" if done.error else "ok"  # an error result is the model's to read
        line = {"chat": chat, "call_id": call_id, "tool": call.name, "result": told}
        lines.append(("tool_called", line))
        silent = silent if silent is not None else done.silent
    if silent is not None:
        withheld = ReplyWithheld(
            chat=chat, call_id=call_id, reason=silent, trigger_ids=request.trigger_ids
        )
        lines.append(("reply_withheld", {"chat": chat, "call_id": call_id}))
        return Called(events=[*events, withheld], lines=lines)
    rounds = [
        *request.rounds,
        ToolRound(calls=result.tool_calls, outputs=outputs, content=result.content),
    ]
    tools = request.tools if len(rounds) < max_rounds else []
    following = msgspec.structs.replace(request, rounds=rounds, tools=tools)
    return Called(events=events, lines=lines, next=following)
