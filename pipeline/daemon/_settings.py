"""The config in force: loaded at start, re-read whenever app.json changes.

app.json is hashed every ``polling.interval_seconds``; a changed file is
validated and, if valid, recorded as ``ConfigLoaded`` and used from the next
decision on. An invalid edit is logged once and the old config stays in force.
The keys read once at start (``RESTART_ONLY``) keep their running values until
a restart, with a warning naming them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import anyio
import msgspec

from events.model import ConfigLoaded
from pipeline.config import AppConfig, ConfigError, LoadedConfig, load_config
from pipeline.daemon._folded_log import FoldedLog
from pipeline.logs import get_logger

log = get_logger("wabot.daemon")


# The settings read once at start (the transport, the store, the logs and the
# console are built from them): a reload keeps their running values
# (docs/config.md, "The file"). A one-name path is a whole section.
RESTART_ONLY: tuple[tuple[str, ...], ...] = (
    ("whatsapp", "phone_number"),
    ("whatsapp", "bot_tag"),
    ("whatsapp", "session_db"),
    ("whatsapp", "proxy"),
    ("store",),
    ("logging",),
    ("web",),
)


def restart_only_kept(running: AppConfig, edited: AppConfig) -> tuple[AppConfig, list[str]]:
    """``edited`` with the running values of ``RESTART_ONLY``, and the keys that differed."""
    changed = []
    config = edited
    for path in RESTART_ONLY:
        kept = _get(running, path)
        if differing := _differences(kept, _get(edited, path), ".".join(path)):
            changed += differing
            config = _set(config, path, kept)
    return config, changed


def _differences(old: Any, new: Any, key: str) -> list[str]:
    """The keys under ``key`` whose values differ (the leaves, in a section)."""
    if old == new:
        return []
    if isinstance(old, msgspec.Struct) and isinstance(new, msgspec.Struct):
        fields = old.__struct_fields__
        return [
            k for f in fields for k in _differences(getattr(old, f), getattr(new, f), f"{key}.{f}")
        ]
    return [key]


def _get(node: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        node = getattr(node, name)
    return node


def _set(node: Any, path: tuple[str, ...], value: Any) -> Any:
    first, *rest = path
    inner = _set(getattr(node, first), tuple(rest), value) if rest else value
    return msgspec.structs.replace(node, **{first: inner})


# Written by ``replay.py apply`` beside app.json (pipeline/tools/replay/_apply.py).
EXPERIMENT_SUFFIX = ".experiment"


def config_loaded(loaded: LoadedConfig) -> ConfigLoaded:
    """The event that records ``loaded`` (secrets are not part of it)."""
    return ConfigLoaded(
        hash=loaded.hash,
        config=loaded.public_dict(),
        path=loaded.path,
        experiment=applied_experiment(Path(loaded.path), loaded.hash),
    )


def applied_experiment(path: Path, digest: str) -> str | None:
    """The replay experiment app.json was applied from, while it is still that file.

    The marker names the sha256 of the app.json it wrote, so any later edit by
    hand (another hash) is never credited to the experiment. A missing or
    unreadable marker only means no experiment is named.
    """
    try:
        marker = msgspec.json.decode(path.with_name(path.name + EXPERIMENT_SUFFIX).read_bytes())
    except (OSError, ValueError, RecursionError):  # ValueError: not JSON, not UTF-8
        return None
    if not isinstance(marker, dict) or marker.get("hash") != digest:
        return None
    name = marker.get("experiment")
    return name if isinstance(name, str) and name else None


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

    async def watch(self, folded: FoldedLog) -> None:
        """Reload on change, forever; a config edit is seen within one poll interval."""
        while True:
            await anyio.sleep(self.app.polling.interval_seconds)
            await self.reload(folded)

    async def reload(self, folded: FoldedLog) -> None:
        try:
            digest = hashlib.sha256(await anyio.Path(self.path).read_bytes()).hexdigest()
        except OSError as exc:
            digest = f"unreadable:{exc.errno}"
        if digest in (self.loaded.hash, self._rejected):
            return
        try:
            loaded = load_config(self.path, env_file=self.env_file)
            config, changed = restart_only_kept(self.app, loaded.config)
        except ConfigError as exc:
            self._reject(digest, str(exc))
            return
        except Exception as exc:  # a loader bug: still no reason to stop answering
            self._reject(digest, f"{self.path}: cannot load ({type(exc).__name__}: {exc})")
            return
        if changed:
            loaded = msgspec.structs.replace(loaded, config=config)
            log.warning(
                "config_needs_restart",
                keys=changed,
                note="read once at start: the running values stay until a restart",
            )
        event = config_loaded(loaded)
        await folded.append(event)
        self.loaded = loaded
        log.info("config_reloaded", config_hash=loaded.hash[:12], experiment=event.experiment)

    def _reject(self, digest: str, error: str) -> None:
        self._rejected = digest
        log.warning("config_rejected", error=error, kept=self.loaded.hash[:12])
