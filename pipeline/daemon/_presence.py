"""What the bot shows the other side ("typing…", read): best effort, never in the way.

WhatsApp drops a composing state after some seconds, so it is refreshed while
an LLM call lasts and set to paused when it ends. A transport call that hangs
or fails costs the reply nothing: each has a short deadline and errors are
logged (``best_effort``; the sender marks answered messages read through it too).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Protocol

import anyio
import structlog

from pipeline.logs import get_logger

log = get_logger("wabot.agent")

REFRESH_SECONDS = 10.0
_CALL_DEADLINE = 5.0


class Shows(Protocol):
    async def typing(self, chat: str, on: bool) -> None: ...


@asynccontextmanager
async def typing(transport: Shows, chat: str, *, enabled: bool) -> AsyncIterator[None]:
    if not enabled:
        yield
        return
    # A bare asyncio task (the daemon's loop is always asyncio, for neonize), not
    # a task group: one is made for every LLM call, and a group costs several times
    # as much to open and close. The task only ever waits on the transport and a sleep.
    refresher = asyncio.get_running_loop().create_task(_keep_typing(transport, chat))
    try:
        yield
    finally:
        refresher.cancel()
        with anyio.CancelScope(shield=True):
            await _show(transport, chat, on=False)


async def _keep_typing(transport: Shows, chat: str) -> None:
    while True:
        await _show(transport, chat, on=True)
        await anyio.sleep(REFRESH_SECONDS)


async def _show(transport: Shows, chat: str, *, on: bool) -> None:
    await best_effort(
        transport.typing(chat, on), deadline=_CALL_DEADLINE, logger=log, what="typing", chat=chat
    )


async def best_effort(
    call: Awaitable[None],
    *,
    deadline: float,
    logger: structlog.stdlib.BoundLogger,
    what: str,
    chat: str,
) -> None:
    """Await ``call`` for ``deadline`` seconds at most; a hang or an error is only
    logged (``{what}_timed_out``, ``{what}_failed``, at debug)."""
    # asyncio's timeout (a loop timer) rather than an anyio cancel scope: two or
    # three of these run for every message.
    try:
        async with asyncio.timeout(deadline):
            await call
    except TimeoutError:
        logger.debug(f"{what}_timed_out", chat=chat)
    except Exception as exc:
        logger.debug(f"{what}_failed", chat=chat, error=str(exc))
