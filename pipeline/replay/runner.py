"""Re-run turns against the LLM, concurrently up to a limit.

With ``context="replayed"`` a turn's context holds the new answers of earlier
turns of its session, so each session runs in order; sessions still run side
by side. Failures are results, not exceptions: one bad turn spoils nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import anyio
import msgspec

from events.model import Usage
from pipeline.llm import LlmError, LlmResult, format_reply
from pipeline.replay.rebuild import Turn
from pipeline.replay.variant import Settings, request_for
from pipeline.request import Request


class Llm(Protocol):
    async def complete(self, request: Request) -> tuple[LlmResult, bool]: ...


class NewReply(msgspec.Struct, frozen=True, kw_only=True):
    request: Request | None = None
    content: str | None = None
    reply: str | None = None  # as it would be sent: content plus sources
    usage: Usage | None = None
    latency_ms: float | None = None
    cached: bool = False
    error: str | None = None


async def replay(
    turns: Sequence[Turn],
    settings: Settings,
    llm: Llm,
    *,
    concurrency: int,
    on_done: Callable[[], None] = lambda: None,
) -> dict[str, NewReply]:
    """New replies by call id, for every turn of ``turns``."""
    results: dict[str, NewReply] = {}
    answers: dict[str, str] = {}  # call_id -> new content, for chained contexts
    limiter = anyio.CapacityLimiter(concurrency)

    async def run_chain(chain: list[Turn]) -> None:
        for turn in chain:
            async with limiter:
                result = await _one(turn, settings, llm, answers)
            results[turn.call_id] = result
            if result.content is not None:
                answers[turn.call_id] = result.content
            on_done()

    async with anyio.create_task_group() as tg:
        for chain in _chains(turns, settings):
            tg.start_soon(run_chain, chain)
    return results


def _chains(turns: Sequence[Turn], settings: Settings) -> list[list[Turn]]:
    if settings.context == "recorded":
        return [[t] for t in turns]
    by_session: dict[str, list[Turn]] = {}
    for turn in turns:
        by_session.setdefault(turn.session_id, []).append(turn)
    return list(by_session.values())


async def _one(turn: Turn, settings: Settings, llm: Llm, answers: dict[str, str]) -> NewReply:
    if turn.inputs is None:
        return NewReply(error=f"cannot rebuild: {turn.problem}")
    try:
        request = request_for(turn.inputs, settings, answers)
    except ValueError as exc:
        return NewReply(error=f"cannot rebuild: {exc}")
    try:
        result, cached = await llm.complete(request)
    except LlmError as exc:
        return NewReply(request=request, error=str(exc))
    return NewReply(
        request=request,
        content=result.content,
        reply=format_reply(result.content, result.citations),
        usage=result.usage,
        latency_ms=result.latency_ms,
        cached=cached,
    )
