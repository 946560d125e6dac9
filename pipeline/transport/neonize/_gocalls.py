"""neonize's Go calls, with the one that may never return kept off the event loop's exit.

neonize runs its blocking connect (``Neonize``) through ``asyncio.to_thread``:
a worker of the default executor, which the event loop joins without a
timeout when it closes (Python 3.11). During QR pairing that call never
returns once the client is stopped (whatsmeow leaves its QR channel open), so
the process could not exit. Here ``Neonize`` runs on a daemon thread that
exit does not wait for; every other call goes through neonize as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from neonize._binder import gocode
from neonize.aioze.client import async_gocode


class DaemonThreadGo:
    """Stands in for neonize's ``async_gocode`` on one client (``_NewAClient__client``)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(async_gocode, name)

    async def Neonize(self, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()

        def settle(result: Any, error: BaseException | None) -> None:
            if done.done():
                return
            if error is not None:
                done.set_exception(error)
            else:
                done.set_result(result)

        def connect() -> None:
            try:
                result, error = gocode.Neonize(*args), None
            except BaseException as exc:
                result, error = None, exc
            # RuntimeError: the loop has closed, nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, result, error)

        threading.Thread(target=connect, name="neonize-connect", daemon=True).start()
        return await done
