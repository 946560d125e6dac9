"""The offline tools: they read the log (or compact it) and never load the daemon.

- ``audit`` — a chat's timeline: messages, decisions and their reasons, requests, replies.
- ``stats`` (``run_stats``) — counts, spend, latency and the connection state.
- ``stats --all`` (``run_stats_all``) — one line per WhatsApp number in the database.
- ``compact`` / ``forget`` — the only ways events leave the log; safe beside the daemon.
- ``migrate`` — a store's SQLite log into PostgreSQL or back, verified.
- ``replay`` (``python replay.py``) — a chat's LLM calls checked or re-run with new settings.
- ``web`` — a read-only web console over the log, with ``/healthz`` and ``/metrics``.

CHAT and time arguments are read the same way by all of them (``_args``), and so
is which log they work on (``Where``: the store, a PostgreSQL URL, a number).
"""

from pipeline.tools._args import BadArgument
from pipeline.tools._maintenance import compact, forget
from pipeline.tools._migrate import migrate
from pipeline.tools._stats import run_stats
from pipeline.tools._stats_all import run_stats_all
from pipeline.tools._where import Where, where_from_args
from pipeline.tools.audit import run_audit

__all__ = [
    "BadArgument",
    "Where",
    "compact",
    "forget",
    "migrate",
    "run_audit",
    "run_stats",
    "run_stats_all",
    "where_from_args",
]
