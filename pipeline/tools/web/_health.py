"""Is the bot alive? Four checks, each known from the log or the daemon itself.

- **daemon**: inside ``run`` the daemon answers in-process (``DaemonProbe``:
  its agent loop runs and it is not stopping). Standalone, the console asks who
  holds the lock a daemon holds for its whole life, which goes when the process
  dies, however it dies: on SQLite the kernel (is the store's ``daemon.lock``
  flocked? ``/proc/locks``, Linux), on PostgreSQL the server (the number's
  lease, ``events.postgres.Lease``, held by a daemon on any machine).
- **connection**: the last ``TransportStatus`` in the log is ``connected``.
- **queue**: no message has waited for a decision longer than the config in
  force allows (debounce plus every LLM attempt with its timeout and backoff):
  a stuck agent shows here even while its loop still turns.
- **account**: WhatsApp does not restrict the account from messaging others
  (error 463/479): while it does, replies to others wait.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple, Protocol

from events.protocol import LogError
from pipeline.config import AppConfig
from pipeline.store_lock import LOCK_NAME
from pipeline.tools._stats import account_report, account_text
from projections.fold import States

PROC_LOCKS = Path("/proc/locks")
# Per LLM attempt on top of its timeout: backoff (a server may ask for 60 s) and the reply.
_ATTEMPT_SLACK = 60.0
_QUEUE_SLACK = 60.0


class DaemonProbe(Protocol):
    """What a daemon in the same process tells the console (``pipeline.daemon`` satisfies it)."""

    def problem(self) -> str | None:
        """None while the daemon's agent loop runs; otherwise why not, in a few words."""
        ...


class Finder(NamedTuple):
    """How a standalone console finds the daemon: ``who()`` names the running one, or None.

    ``who`` raises ``OSError`` or ``LogError`` when it cannot tell.
    """

    place: str  # where a daemon would run, for "no daemon is running on ..."
    who: Callable[[], str | None]


def lock_file_finder(store: Path) -> Finder:
    def who() -> str | None:
        holder = lock_holder(store / LOCK_NAME)
        return None if holder is None else f"pid {holder}" if holder else ""

    return Finder(str(store), who)


class Check(NamedTuple):
    name: str
    ok: bool
    text: str


class Health(NamedTuple):
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def reason(self) -> str:
        """The failing checks in one line, or a one-line all-clear."""
        bad = [f"{c.name}: {c.text}" for c in self.checks if not c.ok]
        return "; ".join(bad) if bad else "all checks pass"


def health(
    states: States,
    config: AppConfig | None,
    daemon: DaemonProbe | Finder,
    now: float,
) -> Health:
    return Health(
        [
            daemon_check(daemon),
            connection_check(states),
            queue_check(states, config, now),
            account_check(states, now),
        ]
    )


def daemon_check(daemon: DaemonProbe | Finder) -> Check:
    if not isinstance(daemon, Finder):
        problem = daemon.problem()
        return Check("daemon", problem is None, problem or "agent loop running (this process)")
    try:
        who = daemon.who()
    except OSError as exc:
        return Check("daemon", False, f"cannot tell whether a daemon runs ({exc.strerror or exc})")
    except LogError as exc:
        return Check("daemon", False, f"cannot tell whether a daemon runs ({exc})")
    if who is None:
        return Check("daemon", False, f"no daemon is running on {daemon.place}")
    return Check("daemon", True, f"running ({who})" if who else "running")


def connection_check(states: States) -> Check:
    state, detail = states.connection.state, states.connection.detail
    if state is None:
        return Check("connection", False, "the transport has not reported yet")
    text = f"{state} ({detail})" if detail else state
    return Check("connection", state == "connected", text)


def account_check(states: States, now: float) -> Check:
    found = account_report(states, now)
    return Check("account", not found.restricted, account_text(found))


def queue_check(states: States, config: AppConfig | None, now: float) -> Check:
    waiting = oldest_undecided(states)
    if waiting is None:
        return Check("queue", True, "no message waiting")
    age = now - waiting
    limit = decision_limit(config)
    if age > limit:
        return Check(
            "queue", False, f"a message has waited {age:.0f} s for a decision (> {limit:.0f} s)"
        )
    return Check("queue", True, f"oldest message waiting {age:.0f} s")


def oldest_undecided(states: States) -> float | None:
    """When the log recorded the oldest message still awaiting a decision."""
    return min(
        (i.ts for items in states.queue.chats.values() for i in items.values()), default=None
    )


def decision_limit(config: AppConfig | None) -> float:
    """Seconds a message may wait for a decision before the agent counts as stuck."""
    if config is None:
        return 600.0
    llm = config.llm
    attempts = llm.max_retries + 1
    return (
        config.polling.debounce_seconds
        + attempts * (llm.timeout_seconds + _ATTEMPT_SLACK)
        + _QUEUE_SLACK
    )


def lock_holder(lock: Path) -> int | None:
    """The pid holding ``lock`` with flock (0 if the kernel hides it), or None if nobody does.

    Reads ``/proc/locks`` only: trying the lock ourselves could make a daemon
    starting at that instant believe another one runs.
    """
    try:
        st = lock.stat()
    except FileNotFoundError:
        return None
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in PROC_LOCKS.read_text().splitlines():
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 8564 fe:00:2150011 0 EOF"; waiters have "->" after the id.
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == device:
            return int(fields[4]) if fields[4].isdigit() else 0
    return None
