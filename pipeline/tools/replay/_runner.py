"""Re-run calls against the LLM, concurrently up to a limit.

With ``context="replayed"`` a call's context holds the new answers of earlier
calls of its session, so each session runs in order; sessions still run side
by side. Failures are results, not exceptions: one bad call spoils nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import anyio
import msgspec

from events.model import Usage
from pipeline.llm import LlmError, LlmResult, Prompt, format_reply
from pipeline.tools.replay._variant import Unbuildable, Variant, formatting_for, prompt_for
from projections.calls import Call


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
    except Unbuildable as exc:
        return NewReply(error=f"cannot rebuild: {exc}")
    try:
        result, cached = await llm.complete(prompt, call.request.chat)
    except LlmError as exc:
        return NewReply(request=prompt, error=str(exc))
    return NewReply(
        request=prompt,
        content=result.content,
        reply=format_reply(
            result.content, result.citations, formatting=formatting_for(call, variant)
        ),
        usage=result.usage,
        latency_ms=result.latency_ms,
        cached=cached,
    )
