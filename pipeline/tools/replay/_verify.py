"""``--recorded``: does each call's prompt, composed again, equal the one the agent recorded?"""

from __future__ import annotations

from typing import Any

import msgspec

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
    differences = compare(recorded_prompt(call), rebuilt)
    return Check(call=call, ok=not differences, differences=differences)


def compare(recorded: Prompt, rebuilt: Prompt) -> list[str]:
    """What differs, as ``field: recorded … != rebuilt …`` lines."""
    lines: list[str] = []
    if recorded.model != rebuilt.model:
        lines.append(_line("model", recorded.model, rebuilt.model))
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
