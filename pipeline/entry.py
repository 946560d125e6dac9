"""What every command does as a process around its ``main``: ``python -m pipeline``,
the ``wabot`` script and ``replay.py`` alike.

Everything it writes is private, whatever a library creates without asking.
And when the program reading its output goes away (``… | head -1``,
``… | true``), it ends as ``cat`` or ``grep`` do, quietly and by SIGPIPE (a
shell reports 141), never with a traceback. SIGPIPE is not left at its default
while the command runs, as Python's documentation warns: the commands also
talk over sockets (the LLM, PostgreSQL), where a reset must stay an error the
command handles, not an unexplained death.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import NoReturn

from events.owner_only import restrict_umask


def run_main(main: Callable[[], int]) -> NoReturn:
    """Run ``main`` and exit with its status."""
    restrict_umask()
    try:
        status = main()
        sys.stdout.flush()  # a reader gone shows here, not in the flush at exit
    except BrokenPipeError:
        _end_as_the_pipe_says()
    sys.exit(status)


def _end_as_the_pipe_says() -> NoReturn:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGPIPE)
    os._exit(128 + signal.SIGPIPE)  # only where the signal cannot end the process
