"""The config in force: loaded at start, re-read whenever app.json changes.

app.json is hashed every ``polling.interval_seconds``; a changed file is
validated and, if valid, recorded as ``ConfigLoaded`` and used from the next
decision on. An invalid edit is logged once and the old config stays in force.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import anyio

from events.model import ConfigLoaded
from pipeline.config import AppConfig, ConfigError, LoadedConfig, load_config
from pipeline.daemon._live import Live
from pipeline.logs import get_logger

log = get_logger("wabot.daemon")


def config_loaded(loaded: LoadedConfig) -> ConfigLoaded:
    """The event that records ``loaded`` (secrets are not part of it)."""
    return ConfigLoaded(hash=loaded.hash, config=loaded.public_dict(), path=loaded.path)


class Settings:
    def __init__(self, loaded: LoadedConfig, *, env_file: Path | None = None) -> None:
        self.loaded = loaded
        self.path = Path(loaded.path)
        self.env_file = env_file
        self._rejected = ""  # digest of the last invalid edit, reported once

    @property
    def app(self) -> AppConfig:
        """The parsed app.json in force."""
        return self.loaded.config

    async def watch(self, live: Live) -> None:
        """Reload on change, forever; a config edit is seen within one poll interval."""
        while True:
            await anyio.sleep(self.app.polling.interval_seconds)
            await self.reload(live)

    async def reload(self, live: Live) -> None:
        try:
            digest = hashlib.sha256(await anyio.Path(self.path).read_bytes()).hexdigest()
        except OSError as exc:
            digest = f"unreadable:{exc.errno}"
        if digest in (self.loaded.hash, self._rejected):
            return
        try:
            loaded = load_config(self.path, env_file=self.env_file)
        except ConfigError as exc:
            self._reject(digest, str(exc))
            return
        except Exception as exc:  # a loader bug: still no reason to stop answering
            self._reject(digest, f"{self.path}: cannot load ({type(exc).__name__}: {exc})")
            return
        await live.append(config_loaded(loaded))
        self.loaded = loaded
        log.info("config_reloaded", config_hash=loaded.hash[:12])

    def _reject(self, digest: str, error: str) -> None:
        self._rejected = digest
        log.warning("config_rejected", error=error, kept=self.loaded.hash[:12])
