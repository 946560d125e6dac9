"""sd_notify over a real unix datagram socket, and the liveness that feeds systemd's watchdog."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from pipeline.daemon._liveness import Liveness, sd_notify, watchdog_interval


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket standing in for systemd's, and its $NOTIFY_SOCKET value."""
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(10)
        yield sock, str(path)


def test_a_message_arrives_as_one_datagram(notify_socket: tuple[socket.socket, str]):
    sock, path = notify_socket
    assert sd_notify("READY=1", {"NOTIFY_SOCKET": path})
    assert sock.recv(4096) == b"READY=1"


def test_an_abstract_socket_name_starts_with_an_at_sign():
    name = f"wabot-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(10)
        assert sd_notify("WATCHDOG=1", {"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(4096) == b"WATCHDOG=1"


def test_without_systemd_nothing_is_sent_and_nothing_fails(tmp_path: Path):
    assert not sd_notify("READY=1", {})
    assert not sd_notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone")})


def test_the_watchdog_interval_is_half_systemds_timeout_and_only_for_this_process():
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) == 15
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval({}) is None


def _drain(sock: socket.socket) -> list[bytes]:
    sock.setblocking(False)
    found = []
    try:
        while True:
            found.append(sock.recv(4096))
    except BlockingIOError:
        return found
    finally:
        sock.settimeout(10)


@pytest.mark.anyio
async def test_pings_go_while_the_agent_loop_runs_and_stop_when_it_ends(
    notify_socket: tuple[socket.socket, str],
):
    sock, path = notify_socket
    interval = 0.02
    liveness = Liveness({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": str(int(interval * 2e6))})
    release = anyio.Event()
    assert liveness.problem() == "the agent loop has not started"
    async with anyio.create_task_group() as tg:
        agent_done = anyio.Event()

        async def agent() -> None:
            await liveness.run_agent(release.wait)
            agent_done.set()

        tg.start_soon(agent)
        tg.start_soon(liveness.tell_systemd)
        assert await anyio.to_thread.run_sync(sock.recv, 4096) == b"READY=1"
        assert await anyio.to_thread.run_sync(sock.recv, 4096) == b"WATCHDOG=1"
        assert liveness.problem() is None

        release.set()
        await agent_done.wait()
        assert liveness.problem() == "the agent loop has ended"
        _drain(sock)  # pings sent before the loop ended
        await anyio.sleep(interval * 5)  # five intervals without a ping prove none goes
        liveness.stop()
        assert await anyio.to_thread.run_sync(sock.recv, 4096) == b"STOPPING=1"
        assert liveness.problem() == "the daemon is stopping"
        tg.cancel_scope.cancel()
