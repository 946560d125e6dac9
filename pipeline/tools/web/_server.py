"""Serving the console with uvicorn: standalone (``python -m pipeline web``) or inside ``run``.

The socket is bound before anything else starts, so a taken port is a one-line
error at start. uvicorn is driven, not run: whoever started it (the daemon or
the ``web`` command) owns SIGINT and SIGTERM, and cancelling the serving task
closes the listener and open connections within a second or two.
"""

from __future__ import annotations

import contextlib
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.to_thread
import uvicorn
from starlette.types import ASGIApp

from pipeline.config import WebConfig
from pipeline.logs import get_logger
from pipeline.tools._where import Where
from pipeline.tools.web._app import create_app
from pipeline.tools.web._console import Console
from pipeline.tools.web._health import DaemonProbe

log = get_logger("wabot.web")
_BACKLOG = 64
_GRACE_SECONDS = 1
_PROXY_PEERS = ("127.0.0.1", "::1")  # whose X-Forwarded-Proto/-For are believed


class WebError(Exception):
    """The console cannot start (the address is taken or not ours): exit 2, one line."""


def bind(web: WebConfig) -> socket.socket:
    """A listening socket on ``web.listen``; ``WebError`` when that is impossible."""
    host, port = web.host, web.port
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise WebError(f"cannot listen on {web.listen}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(_BACKLOG)
    except OSError as exc:
        sock.close()
        raise WebError(f"cannot listen on {web.listen}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Signals belong to the daemon (or the web command): uvicorn must not take them.
        yield


async def serve_app(app: ASGIApp, sock: socket.socket) -> None:
    """Serve ``app`` on ``sock`` until cancelled."""
    config = uvicorn.Config(
        app,
        log_config=None,
        log_level="warning",
        access_log=False,  # a ?token= login would otherwise be logged
        lifespan="off",
        http="h11",
        ws="none",
        server_header=False,
        # A TLS reverse proxy on this machine says the browser came over https (so the
        # session cookie is Secure) and who the client was; from any other peer these
        # headers are ignored, however FORWARDED_ALLOW_IPS is set: anyone could send them.
        proxy_headers=True,
        forwarded_allow_ips=list(_PROXY_PEERS),
        timeout_graceful_shutdown=_GRACE_SECONDS,
    )
    server = _Server(config)
    try:
        await server.serve(sockets=[sock])
    except anyio.get_cancelled_exc_class():
        # Close the listener and idle connections; a request still running gets a moment.
        with anyio.CancelScope(shield=True) as scope:
            scope.deadline = anyio.current_time() + 2 * _GRACE_SECONDS
            if server.started:
                server.force_exit = True
                await server.shutdown(sockets=[sock])
        raise
    finally:
        sock.close()


async def _serve_console(console: Console, sock: socket.socket, token: str | None) -> None:
    log.info("web_listening", url=url_of(sock), store=str(console.store), token=token is not None)
    await serve_app(create_app(console, token=token), sock)


async def serve(
    store: Path | Where,
    sock: socket.socket,
    *,
    token: str | None,
    probe: DaemonProbe | None = None,
) -> None:
    """The console on ``sock`` over ``store``'s log until cancelled (``run`` starts it so)."""
    console = await anyio.to_thread.run_sync(lambda: Console(store, probe=probe))
    try:
        await _serve_console(console, sock, token)
    finally:
        console.close()


def run_standalone(store: Path | Where, web: WebConfig, token: str | None) -> None:
    """``python -m pipeline web``: open the log, bind, serve until SIGINT or SIGTERM.

    Raises ``NoLog`` (no log in ``store``) or ``WebError`` before serving anything.
    """
    console = Console(store)
    try:
        sock = bind(web)
    except WebError:
        console.close()
        raise

    async def main() -> None:
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_serve_console, console, sock, token)
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for _ in signals:
                        break
                tg.cancel_scope.cancel()
        finally:
            console.close()

    anyio.run(main, backend="asyncio")
