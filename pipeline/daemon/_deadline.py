"""The last resort of a stop: the process ends by a deadline, whatever still hangs.

A Go call of the WhatsApp library can block for a minute (a dial in progress)
or forever (stopped during QR pairing), and Python joins such threads at exit.
A supervisor waits for us only so long (systemd's TimeoutStopSec), and a user
pressing Ctrl-C waits less: once a stop begins, a timer ends the process at
the deadline. The log needs nothing more: every commit is already durable.
"""

from __future__ import annotations

import logging
import os
import threading

from pipeline.logs import get_logger

log = get_logger("wabot.daemon")

# A stop ends the process within this many seconds of the signal.
STOP_DEADLINE = 14.0


def arm(seconds: float, exit_code: int) -> threading.Timer:
    """End the process with ``exit_code`` after ``seconds`` unless it ends first."""
    timer = threading.Timer(seconds, _force_exit, args=(seconds, exit_code))
    timer.daemon = True
    timer.start()
    return timer


def _force_exit(seconds: float, exit_code: int) -> None:
    log.warning("exit_forced", after_seconds=seconds, reason="a WhatsApp library call still hangs")
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(exit_code)
