"""neonize's Go calls, with those that may never return kept off the event loop's exit.

neonize runs its Go calls through ``asyncio.to_thread``: workers of the
default executor, which the event loop joins without a timeout when it closes
(Python 3.11). During QR pairing the blocking connect (``Neonize``) never
returns once the client is stopped (whatsmeow leaves its QR channel open); a
media download (``DownloadAny``) on a dead connection may hang for as long, and
so may a media upload (``Upload``: whatsmeow's HTTP client for media has no
timeout); a LID lookup (``GetPNFromLID``) waits on the session database. So
the process could not exit. Those calls run on daemon threads that exit does
not wait for (the daemon stops waiting for a download or an upload at its own
time limit); every other call goes through neonize as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any

from neonize._binder import gocode
from neonize.aioze.client import async_gocode


class DaemonThreadGo:
    """Stands in for neonize's ``async_gocode`` on one client (``_NewAClient__client``)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(async_gocode, name)

    async def Neonize(self, *args: Any) -> Any:
        return await _on_daemon_thread(gocode.Neonize, args, "neonize-connect")

    async def DownloadAny(self, *args: Any) -> Any:
        return await _on_daemon_thread(gocode.DownloadAny, args, "neonize-download")

    async def GetPNFromLID(self, *args: Any) -> Any:
        return await _on_daemon_thread(gocode.GetPNFromLID, args, "neonize-lid")

    async def Upload(self, *args: Any) -> Any:
        return await _on_daemon_thread(gocode.Upload, args, "neonize-upload")


async def _on_daemon_thread(call: Callable[..., Any], args: tuple[Any, ...], name: str) -> Any:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Any] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if done.done():  # the caller stopped waiting
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)

    def run() -> None:
        try:
            result, error = call(*args), None
        except BaseException as exc:
            result, error = None, exc
        # RuntimeError: the loop has closed, nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name=name, daemon=True).start()
    return await done
