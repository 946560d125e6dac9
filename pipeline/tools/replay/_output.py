"""What ``replay.py`` prints: per-turn checks or old/new replies, and JSON documents."""

from __future__ import annotations

import difflib
import itertools
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from events.model import Usage
from pipeline.config import counted
from pipeline.llm import format_reply
from pipeline.tools._args import iso
from pipeline.tools.replay._runner import NewReply
from pipeline.tools.replay._verify import Check
from projections.calls import Call, ToolTrace

SIDE_BY_SIDE_COLUMNS = 120
_GUTTER = " │ "
# A turn the model chose not to answer (tool ``stay_silent``): an outcome the judge
# weighs like a reply. Without the reason, so two silences are the same outcome.
SILENT = "(no reply: the assistant chose to stay silent)"


def check_text(checks: Sequence[Check]) -> str:
    lines = []
    for c in checks:
        t = c.call
        lines.append(f"turn {t.index:<3} seq {t.seq:<6} {iso(t.ts)}  {'OK' if c.ok else 'DIFF'}")
        lines += [f"    {d}" for d in c.differences]
    bad = sum(not c.ok for c in checks)
    lines.append(f"{counted(len(checks), 'turn')} checked: {len(checks) - bad} OK, {bad} DIFF")
    return "\n".join(lines)


def check_doc(chat: str, checks: Sequence[Check]) -> dict[str, Any]:
    return {
        "chat": chat,
        "mode": "recorded",
        "ok": all(c.ok for c in checks),
        "turns": [
            {
                **turn_head(c.call),
                "status": "OK" if c.ok else "DIFF",
                "differences": c.differences,
                "old": old_fields(c.call),
            }
            for c in checks
        ],
    }


def old_reply(turn: Call) -> str | None:
    """What the bot answered: the planned reply, else the bare LLM answer; ``SILENT``
    when the model stayed silent."""
    out = turn.outcome
    if out.reply is not None:
        return out.reply
    if out.silent is not None:
        return SILENT
    return None if out.content is None else format_reply(out.content, out.citations)


def new_reply(reply: NewReply) -> str | None:
    """What the new settings answered: the reply, or ``SILENT``; None when the call failed."""
    return SILENT if reply.silent is not None else reply.reply


def replay_doc(
    chat: str, settings: Mapping[str, Any], turns: Sequence[Call], new: Mapping[str, NewReply]
) -> dict[str, Any]:
    """The ``--json`` document, also saved as the experiment file."""
    return {
        "chat": chat,
        "settings": dict(settings),
        "turns": [
            {**turn_head(t), "old": old_fields(t), "new": new_fields(new[t.call_id])}
            for t in turns
            if t.call_id in new
        ],
        "summary": totals(turns, new),
    }


def replay_text(turns: Sequence[Call], new: Mapping[str, NewReply], columns: int) -> str:
    return "\n\n".join("\n".join(turn_block(t, new[t.call_id], columns)) for t in turns)


def turn_block(
    t: Call, reply: NewReply, columns: int, *, chat: str = "", reference: str | None = None
) -> list[str]:
    """A turn's head, the user's message, and the old and new reply side by side
    (or as a diff on a narrow terminal); ``chat`` names the chat in the head,
    ``reference`` is what the owner wrote by hand."""
    where = f"{chat} · " if chat else ""
    head = f"── {where}turn {t.index} · seq {t.seq} · {iso(t.ts)} · session {t.session_id[:8]} "
    lines = [head + "─" * max(0, min(columns, 100) - len(head))]
    user = user_said(t) or "(input not in the log)"
    lines += [f"> {line}" for line in user.splitlines() or [""]]
    if reference is not None:
        lines += [f"owner wrote: {line}" for line in reference.splitlines() or [""]]
    old_text = old_reply(t) or f"(no reply: {t.outcome.error or 'never answered'})"
    new_text = new_reply(reply) or f"(failed: {reply.error})"
    old_label = f"old ({_cost_latency(t.outcome.usage, t.outcome.latency_ms)})"
    extra = ", cached" if reply.cached else ""
    new_label = f"new ({_cost_latency(reply.usage, reply.latency_ms)}{extra})"
    if columns >= SIDE_BY_SIDE_COLUMNS:
        lines += _side_by_side((old_label, old_text), (new_label, new_text), columns)
    else:
        lines += _unified((old_label, old_text), (new_label, new_text))
    lines += tool_lines("old", t.outcome.tools, t.outcome.silent)
    return lines + tool_lines("new", reply.tools, reply.silent)


def tool_lines(side: str, tools: Sequence[ToolTrace], silent: str | None) -> list[str]:
    """A side's tool calls, each with the result it got and where that came from."""
    lines = [f"{side} tool {t.name} {t.arguments} -> {t.output} ({t.source})" for t in tools]
    return lines + ([f"{side} stayed silent: {silent}"] if silent is not None else [])


def summary_line(turns: Sequence[Call], new: Mapping[str, NewReply]) -> str:
    s = totals(turns, new)
    return (
        f"{s['turns']} turns replayed ({s['cached']} cached, {s['failed']} failed): "
        f"old cost ${s['old_cost_usd']:.4f}, new cost ${s['new_cost_usd']:.4f}"
    )


def _side_by_side(old: tuple[str, str], new: tuple[str, str], columns: int) -> list[str]:
    width = (columns - len(_GUTTER)) // 2
    left = [old[0], *_wrap(old[1], width)]
    right = [new[0], *_wrap(new[1], width)]
    return [
        f"{a:<{width}}{_GUTTER}{b}".rstrip()
        for a, b in itertools.zip_longest(left, right, fillvalue="")
    ]


def _wrap(text: str, width: int) -> list[str]:
    return [part for line in text.splitlines() for part in textwrap.wrap(line, width) or [""]]


def _unified(old: tuple[str, str], new: tuple[str, str]) -> list[str]:
    if old[1] == new[1]:
        same = [f"  {ln}".rstrip() for ln in old[1].splitlines()]
        return [f"{old[0]} = {new[0]}: same reply", *same]
    diff = difflib.unified_diff(
        old[1].splitlines(), new[1].splitlines(), old[0], new[0], lineterm="", n=2
    )
    return list(diff)


def turn_head(t: Call) -> dict[str, Any]:
    return {
        "turn": t.index,
        "seq": t.seq,
        "at": iso(t.ts),
        "call_id": t.call_id,
        "session_id": t.session_id,
        "user": user_said(t),
    }


def user_said(t: Call) -> str | None:
    """What the user said in the call: its last turn, as sent."""
    return t.request.messages[-1].content if t.inputs is not None and t.request.messages else None


def old_fields(t: Call) -> dict[str, Any]:
    out = t.outcome
    return {
        "reply": old_reply(t),
        "tokens": out.usage.total_tokens if out.usage else None,
        "cost_usd": out.usage.cost_usd if out.usage else None,
        "latency_ms": out.latency_ms,
        "error": out.error,
        "silent": out.silent,
        "tools": msgspec.to_builtins(out.tools),
    }


def new_fields(r: NewReply) -> dict[str, Any]:
    return {
        "reply": new_reply(r),
        "tokens": r.usage.total_tokens if r.usage else None,
        "cost_usd": r.usage.cost_usd if r.usage else None,
        "latency_ms": r.latency_ms,
        "cached": r.cached,
        "error": r.error,
        "silent": r.silent,
        "tools": msgspec.to_builtins(r.tools),
        "request": msgspec.to_builtins(r.request) if r.request else None,
    }


def totals(turns: Sequence[Call], new: Mapping[str, NewReply]) -> dict[str, Any]:
    done = [t for t in turns if t.call_id in new]
    replies = [new[t.call_id] for t in done]
    return {
        "turns": len(done),
        "cached": sum(r.cached for r in replies),
        "failed": sum(r.error is not None for r in replies),
        "old_cost_usd": round(sum(usd(t.outcome.usage) for t in done), 6),
        "new_cost_usd": round(sum(usd(r.usage) for r in replies), 6),
    }


def usd(usage: Usage | None) -> float:
    return (usage.cost_usd or 0.0) if usage else 0.0


def _cost_latency(usage: Usage | None, latency_ms: float | None) -> str:
    cost = "cost unknown" if usage is None or usage.cost_usd is None else f"${usage.cost_usd:.4f}"
    return cost if latency_ms is None else f"{cost}, {latency_ms:.0f} ms"
