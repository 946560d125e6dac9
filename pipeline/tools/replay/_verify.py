"""``--recorded``: does each call's prompt, composed again, equal the one the agent recorded?

A turn with a tool loop is checked round by round: each later round must be
the first request with the recorded calls and results of the rounds before it
(replay never runs a tool: the log's results are the ones reused).
"""

from __future__ import annotations

from typing import Any

import msgspec

from events.model import ToolCall, ToolRound
from pipeline.llm import Prompt
from pipeline.tools.replay._variant import Unbuildable, Variant, prompt_for, recorded_prompt
from projections.calls import Call

_AROUND = 24  # characters of context shown before the first difference
_SHOWN = 60


class Check(msgspec.Struct, frozen=True, kw_only=True):
    call: Call
    ok: bool
    differences: list[str]  # one compact line per differing field


def check(call: Call) -> Check:
    """Compose ``call``'s prompt from its inputs and compare with the recorded one."""
    try:
        rebuilt = prompt_for(call, Variant(), {})
    except Unbuildable as exc:
        return Check(call=call, ok=False, differences=[f"cannot rebuild: {exc}"])
    differences = compare(recorded_prompt(call), rebuilt) + rounds_differ(call)
    return Check(call=call, ok=not differences, differences=differences)


def recorded_rounds(call: Call) -> list[ToolRound]:
    """The turn's rounds of tool calls as its recorded calls and results make them."""
    rounds: list[ToolRound] = []
    for n in sorted({t.round for t in call.outcome.tools}):
        traces = [t for t in call.outcome.tools if t.round == n]
        made = [ToolCall(id="", name=t.name, arguments=t.arguments) for t in traces]
        rounds.append(ToolRound(calls=made, outputs=[t.output or "" for t in traces]))
    return rounds


def rounds_differ(call: Call) -> list[str]:
    """Each later round against the first request and the recorded calls before it."""
    expected = recorded_rounds(call)
    lines = []
    for k, later in enumerate(call.rounds, start=2):
        if later.messages != call.request.messages:
            lines.append(f"round {k}: its messages are not the first request's")
        sent = [
            (c.name, c.arguments, out)
            for r in later.rounds
            for c, out in zip(r.calls, r.outputs, strict=False)
        ]
        logged = [
            (c.name, c.arguments, out)
            for r in expected[: k - 1]
            for c, out in zip(r.calls, r.outputs, strict=False)
        ]
        if sent != logged:
            lines.append(f"round {k}: the calls and results sent are not the ones recorded")
    return lines


def compare(recorded: Prompt, rebuilt: Prompt) -> list[str]:
    """What differs, as ``field: recorded … != rebuilt …`` lines."""
    lines: list[str] = []
    if recorded.model != rebuilt.model:
        lines.append(_line("model", recorded.model, rebuilt.model))
    if recorded.tools != rebuilt.tools:
        lines.append(_line("tools", recorded.tools, rebuilt.tools))
    for key in sorted(set(recorded.params) | set(rebuilt.params)):
        old, new = recorded.params.get(key), rebuilt.params.get(key)
        if old != new:
            lines.append(_line(f"params.{key}", old, new))
    if len(recorded.messages) != len(rebuilt.messages):
        lines.append(
            f"messages: recorded {len(recorded.messages)} turns != "
            f"rebuilt {len(rebuilt.messages)} turns"
        )
    pairs = zip(recorded.messages, rebuilt.messages, strict=False)
    for i, (old_turn, new_turn) in enumerate(pairs):
        if old_turn.role != new_turn.role:
            lines.append(_line(f"messages[{i}].role", old_turn.role, new_turn.role))
        if old_turn.content != new_turn.content:
            lines.append(_text_line(f"messages[{i}].content", old_turn.content, new_turn.content))
        if old_turn.images != new_turn.images:
            lines.append(_line(f"messages[{i}].images", old_turn.images, new_turn.images))
    return lines


def _line(field: str, recorded: Any, rebuilt: Any) -> str:
    return f"{field}: recorded {recorded!r} != rebuilt {rebuilt!r}"


def _text_line(field: str, recorded: str, rebuilt: str) -> str:
    """Both texts around their first difference, so long prompts stay one line."""
    at = next(
        (i for i, (a, b) in enumerate(zip(recorded, rebuilt, strict=False)) if a != b),
        min(len(recorded), len(rebuilt)),
    )
    start = max(0, at - _AROUND)

    def excerpt(text: str) -> str:
        part = text[start : start + _SHOWN]
        return ("…" if start else "") + repr(part) + ("…" if start + _SHOWN < len(text) else "")

    return f"{field} (from char {at}): recorded {excerpt(recorded)} != rebuilt {excerpt(rebuilt)}"
