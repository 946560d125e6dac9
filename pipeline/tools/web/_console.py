"""The log as the console reads it: read-only, with every projection and the summary current.

One ``Console`` per server. Pages are built in worker threads (never on the
event loop, which inside ``run`` is the daemon's), one at a time per console:
``current()`` catches up with the log and hands out a consistent ``Snapshot``.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple
from zoneinfo import ZoneInfo

from events.backends import is_postgres
from events.model import Recorded
from pipeline.config import AppConfig, ConfigError, config_from_dict
from pipeline.tools._where import Where, as_where, chosen_number, open_tool_reader
from pipeline.tools.web._health import DaemonProbe, Finder, Health, health, lock_file_finder
from pipeline.tools.web._summary import Summary
from projections import configs
from projections.fold import States
from projections.runner import Runner

if TYPE_CHECKING:
    from events.postgres import Lease

UTC = ZoneInfo("UTC")


class Snapshot(NamedTuple):
    """Everything a page needs, consistent as of ``states.seq``; valid inside ``current()``."""

    states: States
    summary: Summary
    config: AppConfig | None  # the config in force per the log (None if none or unreadable)
    now: float
    store: Path
    daemon: DaemonProbe | Finder
    place: str  # which log this is, for the footer: the store, or the number's on PostgreSQL

    @property
    def zone(self) -> ZoneInfo:
        """The owner's time zone (``vitality.timezone``): times are shown in it."""
        return self.config.vitality.zone if self.config is not None else UTC

    @property
    def names(self) -> dict[str, str]:
        """Chat JID -> entity name."""
        c = self.config
        if c is None:
            return {}
        return {c.entity_jid(e): e.name for e in c.monitored_entities if e.name}

    def health(self) -> Health:
        return health(self.states, self.config, self.daemon, self.now)


class Console:
    def __init__(
        self,
        store: Path | Where,
        *,
        probe: DaemonProbe | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Open the log read-only (``STORE``'s, or a number's on PostgreSQL) and fold it;
        ``NoLog`` when there is none."""
        where = as_where(store)
        self.store = where.store
        self._lease: Lease | None = None
        self.daemon: DaemonProbe | Finder = probe or self._finder(where)
        self.clock = clock
        self.log = open_tool_reader(where)
        self.place = _place(where)
        self._lock = threading.Lock()
        self._runner = Runner.start(self.log)
        self._summary = self._fold_summary()
        self._config: tuple[str, AppConfig | None] = ("", None)

    def _fold_summary(self) -> Summary:
        summary = Summary()
        upto = self._runner.seq
        summary.feed(itertools.takewhile(lambda r: r.seq <= upto, self.log.read()))
        return summary

    @contextmanager
    def current(self) -> Iterator[Snapshot]:
        with self._lock:
            self._summary.feed(self._runner.catch_up())
            if self._summary.stale:
                self._summary = self._fold_summary()
            states = self._runner.states
            yield Snapshot(
                states,
                self._summary,
                self._config_of(states),
                self.clock(),
                self.store,
                self.daemon,
                self.place,
            )

    def records(self, chat: str) -> list[Recorded]:
        """The chat's events and every chat-less one (configs among them), in log order."""
        return list(self.log.read(chats=[chat, ""]))

    def _config_of(self, states: States) -> AppConfig | None:
        loaded = configs.current(states.configs)
        if loaded is None:
            return None
        if loaded.hash != self._config[0]:
            try:
                parsed: AppConfig | None = config_from_dict(loaded.config)
            except ConfigError:
                parsed = None
            self._config = (loaded.hash, parsed)
        return self._config[1]

    def _finder(self, where: Where) -> Finder:
        if not is_postgres(where.url):
            return lock_file_finder(where.store)
        from events.postgres import Lease  # noqa: PLC0415  (loads psycopg)

        assert where.url is not None
        number = chosen_number(where)
        self._lease = Lease(where.url, name=number)
        return Finder(f"number {number} ({self._lease.where.where})", self._lease.holder)

    def close(self) -> None:
        if self._lease is not None:
            self._lease.release()
        self.log.close()


def _place(where: Where) -> str:
    """The log in a few words: the store's directory, or the number's log on the server
    (never a password; a local store beside a PostgreSQL log holds no log at all)."""
    if not is_postgres(where.url):
        return str(where.store)
    from events.postgres import target  # noqa: PLC0415  (loads psycopg)

    assert where.url is not None
    found = target(where.url)
    return f"the log of number {chosen_number(where)} on {found.where} (schema {found.schema})"
