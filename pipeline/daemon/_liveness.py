"""Whether the daemon is alive, for systemd's watchdog and for a console in the same process.

systemd (``Type=notify``, ``WatchdogSec``) hands the daemon a datagram socket in
``$NOTIFY_SOCKET``: ``READY=1`` once the workers run, ``WATCHDOG=1`` every half
``$WATCHDOG_USEC`` while the agent loop runs, ``STOPPING=1`` at shutdown. A
hung event loop sends nothing more, so systemd kills and restarts the daemon.
The protocol is one datagram per message, so a plain unix socket does it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable, Mapping

import anyio

from pipeline.logs import get_logger

log = get_logger("wabot.daemon")


def sd_notify(message: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send ``message`` to ``$NOTIFY_SOCKET``; False when not run by systemd or it failed."""
    path = (os.environ if environ is None else environ).get("NOTIFY_SOCKET", "")
    if not path:
        return False
    if path.startswith("@"):  # Linux's abstract namespace
        path = "\0" + path[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(path)
            sock.sendall(message.encode())
    except OSError as exc:
        log.warning("sd_notify_failed", error=str(exc))
        return False
    return True


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half systemd's timeout); None without a watchdog."""
    env = os.environ if environ is None else environ
    usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2e6


class Liveness:
    """The agent loop's state; ``problem()`` is what the web console's probe asks."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ
        self.agent_running = False
        self.agent_ended = False
        self.stopping = False

    def problem(self) -> str | None:
        """None while the agent loop runs; otherwise why it does not, in a few words."""
        if self.stopping:
            return "the daemon is stopping"
        if self.agent_ended:
            return "the agent loop has ended"
        if not self.agent_running:
            return "the agent loop has not started"
        return None

    async def run_agent(self, agent_loop: Callable[[], Awaitable[None]]) -> None:
        """Run the agent loop, noting whether it runs."""
        self.agent_running = True
        try:
            await agent_loop()
        finally:
            self.agent_running, self.agent_ended = False, True

    async def tell_systemd(self) -> None:
        """``READY=1`` now, then ``WATCHDOG=1`` at systemd's pace while the agent loop runs."""
        sd_notify("READY=1", self._environ)
        interval = watchdog_interval(self._environ)
        if interval is None:
            return
        while True:
            if self.problem() is None:
                sd_notify("WATCHDOG=1", self._environ)
            await anyio.sleep(interval)

    def stop(self) -> None:
        self.stopping = True
        sd_notify("STOPPING=1", self._environ)
