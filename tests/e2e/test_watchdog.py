"""The real daemon talks to systemd's notify socket: ready, alive while it runs, stopping."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.e2e.conftest import MakeDaemon


def test_the_daemon_is_ready_pings_the_watchdog_and_says_it_stops(
    make_daemon: MakeDaemon, tmp_path: Path
):
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(15)
        daemon = make_daemon(env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "200000"})

        assert sock.recv(4096) == b"READY=1"
        assert sock.recv(4096) == b"WATCHDOG=1"
        assert sock.recv(4096) == b"WATCHDOG=1"  # again, a tenth of a second later

        code, _ = daemon.stop()
        assert code == 0
        rest = []
        sock.settimeout(0)
        try:
            while True:
                rest.append(sock.recv(4096))
        except BlockingIOError:
            pass
        assert rest[-1:] == [b"STOPPING=1"]
        assert set(rest[:-1]) <= {b"WATCHDOG=1"}
