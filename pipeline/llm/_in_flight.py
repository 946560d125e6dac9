"""How many calls are under way on one client, so a client a reload replaced closes
only once the last of them is done (``LlmPool``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import anyio


class InFlight:
    """``with calls.one():`` around each call; ``await calls.idle()`` returns when none is left."""

    def __init__(self) -> None:
        self._count = 0
        # Made when first awaited: an anyio Event needs the running loop, a client does not.
        self._done: anyio.Event | None = None

    @contextmanager
    def one(self) -> Iterator[None]:
        self._count += 1
        try:
            yield
        finally:
            self._count -= 1
            if self._count == 0 and self._done is not None:
                self._done.set()
                self._done = None

    async def idle(self) -> None:
        while self._count:
            if self._done is None:
                self._done = anyio.Event()
            await self._done.wait()
