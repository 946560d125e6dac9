"""Re-run calls against the LLM, concurrently up to a limit.

With ``context="replayed"`` a call's context holds the new answers of earlier
calls of its session, so each session runs in order; sessions still run side
by side. Failures are results, not exceptions: one bad call spoils nothing else.

A new answer that calls tools goes on in rounds as the daemon's would
(``tools.max_rounds``), each call answered by ``_tools`` (the recorded result,
else a simulated one): no tool ever runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import anyio
import msgspec

from events.model import ToolRound, Usage
from pipeline.llm import LlmError, LlmResult, Prompt, format_reply
from pipeline.tools.replay._tools import answer
from pipeline.tools.replay._variant import (
    Unbuildable,
    Variant,
    config_for,
    formatting_for,
    prompt_for,
)
from projections.calls import Call, ToolTrace, added


class Llm(Protocol):
    async def complete(
        self, prompt: Prompt, chat: str, *, keep: Callable[[LlmResult], bool] = ...
    ) -> tuple[LlmResult, bool]: ...


class NewReply(msgspec.Struct, frozen=True, kw_only=True):
    request: Prompt | None = None
    content: str | None = None
    reply: str | None = None  # as it would be sent: content plus sources
    usage: Usage | None = None
    latency_ms: float | None = None
    cached: bool = False
    error: str | None = None
    silent: str | None = None  # the new answer stayed silent, for this reason
    tools: list[ToolTrace] = []  # its tool calls and the results they were given


async def replay(
    calls: Sequence[Call],
    variant: Variant,
    llm: Llm,
    *,
    concurrency: int,
    on_done: Callable[[], None] = lambda: None,
) -> dict[str, NewReply]:
    """New replies by call id, for every call of ``calls``."""
    results: dict[str, NewReply] = {}
    answers: dict[str, str] = {}  # call_id -> new content, for chained contexts
    limiter = anyio.CapacityLimiter(concurrency)

    async def run_chain(chain: list[Call]) -> None:
        for call in chain:
            async with limiter:
                result = await _one(call, variant, llm, answers)
            results[call.call_id] = result
            if result.content is not None:
                answers[call.call_id] = result.content
            on_done()

    async with anyio.create_task_group() as tg:
        for chain in _chains(calls, variant):
            tg.start_soon(run_chain, chain)
    return results


def _chains(calls: Sequence[Call], variant: Variant) -> list[list[Call]]:
    if variant.context == "recorded":
        return [[c] for c in calls]
    by_session: dict[str, list[Call]] = {}
    for call in calls:
        by_session.setdefault(call.session_id, []).append(call)
    return list(by_session.values())


async def _one(call: Call, variant: Variant, llm: Llm, answers: dict[str, str]) -> NewReply:
    try:
        prompt = prompt_for(call, variant, answers)
        bound = config_for(call, variant)
    except Unbuildable as exc:
        return NewReply(error=f"cannot rebuild: {exc}")
    first, spent, traces, all_cached = prompt, None, list[ToolTrace](), True
    while True:
        try:
            result, cached = await llm.complete(prompt, call.request.chat)
        except LlmError as exc:
            return NewReply(request=first, error=str(exc), usage=spent, tools=traces)
        spent = result.usage if spent is None else added(spent, result.usage)
        all_cached = all_cached and cached
        if not (result.tool_calls and prompt.tools):
            break
        number = len(prompt.rounds) + 1
        given = [answer(call, c, prompt.tools, bound, number) for c in result.tool_calls]
        traces += [g.trace for g in given]
        silent = next((g.silent for g in given if g.silent is not None), None)
        if silent is not None:
            return NewReply(
                request=first, usage=spent, cached=all_cached, silent=silent, tools=traces
            )
        done = ToolRound(
            calls=result.tool_calls,
            outputs=[g.trace.output or "" for g in given],
            content=result.content,
        )
        rounds = [*prompt.rounds, done]
        tools = prompt.tools if len(rounds) < bound.tools.max_rounds else []
        prompt = msgspec.structs.replace(prompt, rounds=rounds, tools=tools)
    return NewReply(
        request=first,
        content=result.content,
        reply=format_reply(
            result.content, result.citations, formatting=formatting_for(call, variant)
        ),
        usage=spent,
        latency_ms=result.latency_ms,
        cached=all_cached,
        tools=traces,
    )
