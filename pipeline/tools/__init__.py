"""The offline tools: they read the log (or compact it) and never load the daemon.

- ``audit`` — a chat's timeline: messages, decisions and their reasons, requests, replies.
- ``stats`` (``run_stats``) — counts, spend, latency and the connection state.
- ``compact`` / ``forget`` — the only ways events leave the log; safe beside the daemon.
- ``replay`` (``python replay.py``) — a chat's LLM calls checked or re-run with new settings.
- ``web`` — a read-only web console over the log, with ``/healthz`` and ``/metrics``.

CHAT and time arguments are read the same way by all of them (``_args``).
"""

from pipeline.tools._args import BadArgument
from pipeline.tools._maintenance import compact, forget
from pipeline.tools._stats import run_stats
from pipeline.tools.audit import run_audit

__all__ = ["BadArgument", "compact", "forget", "run_audit", "run_stats"]
