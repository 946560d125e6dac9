"""What runs in ``python -m pipeline run``: the daemon and its workers.

- ``Daemon`` wires them together and handles start-up and shutdown.
- ``Intake`` records what the transport hands over, for monitored chats only.
- ``Agent`` runs each chat's turn as ``_turn`` plans it (pure functions of the
  view, the config and now, with ``_decide``'s judgements): decisions, LLM
  calls and planned replies.
- ``Sender`` delivers planned replies and records the outcome (``_outreach``
  says what may go now).
- ``Scheduler`` sends the daily check-in and rotates the log (``_timetable``).
- The loops wake on commits and work chats through one dispatcher (``_dispatch``).
- ``Settings`` is the config in force and reloads app.json when it changes.
- ``FoldedLog`` is the log with the projections kept current; ``daemon_lock`` keeps
  a second daemon off the same log (``DaemonLock`` on the store, or a lease in
  PostgreSQL for which a second daemon waits as a standby).

Nothing here is imported by the offline tools (``pipeline.tools``).
"""

from pipeline.daemon._agent import Agent
from pipeline.daemon._daemon import GRACE_SECONDS, Daemon
from pipeline.daemon._exits import EXIT_LEASE_LOST, EXIT_NEEDS_OWNER
from pipeline.daemon._folded_log import FoldedLog, Waker
from pipeline.daemon._intake import MAX_TEXT_BYTES, Intake
from pipeline.daemon._lock import AlreadyRunning, DaemonLock, Lock, daemon_lock
from pipeline.daemon._scheduler import Scheduler
from pipeline.daemon._sender import Sender
from pipeline.daemon._settings import Settings, config_loaded
from pipeline.daemon._turn import RESET_REPLY

__all__ = [
    "EXIT_LEASE_LOST",
    "EXIT_NEEDS_OWNER",
    "GRACE_SECONDS",
    "MAX_TEXT_BYTES",
    "RESET_REPLY",
    "Agent",
    "AlreadyRunning",
    "Daemon",
    "DaemonLock",
    "FoldedLog",
    "Intake",
    "Lock",
    "Scheduler",
    "Sender",
    "Settings",
    "Waker",
    "config_loaded",
    "daemon_lock",
]
