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
from typing import NamedTuple
from zoneinfo import ZoneInfo

from events.model import Compacted, Recorded
from pipeline.config import AppConfig, ConfigError, config_from_dict
from pipeline.tools._where import Where, as_where, open_tool_reader
from pipeline.tools.web._health import DaemonProbe, Health, health
from pipeline.tools.web._summary import Summary
from projections import configs
from projections.fold import States
from projections.runner import Runner

UTC = ZoneInfo("UTC")


class Snapshot(NamedTuple):
    """Everything a page needs, consistent as of ``states.seq``; valid inside ``current()``."""

    states: States
    summary: Summary
    config: AppConfig | None  # the config in force per the log (None if none or unreadable)
    now: float
    store: Path
    probe: DaemonProbe | None

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
        return health(self.states, self.config, self.store, self.probe, self.now)


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
        self.probe = probe
        self.clock = clock
        self.log = open_tool_reader(where)
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
            new = self._runner.catch_up()
            if any(isinstance(r.event, Compacted) and r.event.removed for r in new):
                # Events already counted may be gone: count again from what is left.
                self._summary = self._fold_summary()
            else:
                self._summary.feed(new)
            states = self._runner.states
            yield Snapshot(
                states, self._summary, self._config_of(states), self.clock(), self.store, self.probe
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

    def close(self) -> None:
        self.log.close()
