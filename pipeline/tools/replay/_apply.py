"""``python replay.py apply EXPERIMENT``: an experiment's prompt, persona and model into app.json.

app.json is rewritten atomically (a temp file in its directory, fsynced, then
renamed over it), keeping every other key, the key order, the indentation and
the file mode, so the running bot hot-reloads it like any edit.

Which experiment a config came from is not written into app.json: a marker
there would stay behind when the owner edits the file by hand later, and every
later config would wrongly name the experiment (and app.json rejects unknown
keys anyway). It goes into ``app.json.experiment`` beside it, holding the
experiment's name and the sha256 of the app.json it wrote. The daemon names
the experiment in ``ConfigLoaded`` only while app.json still has that hash,
so the first hand edit ends the attribution without anyone deleting anything.

Before writing, the fields to change are compared with the config the bot had
loaded when the experiment ran: if one of them changed since (to something
other than the candidate), applying would silently undo that edit, so apply
refuses with one line.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from events.model import ConfigLoaded, Recorded
from events.owner_only import FILE_MODE
from pipeline.config import AppConfig, ConfigError, config_from_dict
from pipeline.tools._args import BadArgument
from pipeline.tools.replay._files import STAMP, replace_file

MARKER_SUFFIX = ".experiment"  # read by the daemon: pipeline/daemon/_settings.py
_SHOWN = 40
_FIELDS = ("persona", "prompt")  # entity_prompt's order


class Conflict(Exception):
    """app.json changed since the experiment in a field apply would overwrite."""


class Experiment(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    path: Path
    ran_at: float
    chats: list[str]
    prompt: str | None = None
    persona: str | None = None
    model: str | None = None
    config: str | None = None  # the --config it replayed under, if any


class _Settings(msgspec.Struct):
    prompt: str | None = None
    persona: str | None = None
    model: str | None = None
    config: str | None = None


class _Doc(msgspec.Struct):
    """What apply reads of an experiment file (one chat's, or a run across chats)."""

    settings: _Settings
    chat: str | None = None
    chats: list[str] | None = None


def find_experiment(arg: str, replays: Path) -> Experiment:
    """EXPERIMENT as a file path, or a name (with or without .json) under STORE/replays/."""
    candidates = [Path(arg), replays / arg, replays / f"{arg}.json"]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise BadArgument(f"no experiment {arg!r}: not a file, nor a name in {replays}")
    try:
        doc = msgspec.json.decode(path.read_bytes(), type=_Doc)
    except (OSError, msgspec.DecodeError):
        doc = None
    chats = (doc.chats if doc.chats is not None else [doc.chat]) if doc else []
    if doc is None or not chats or None in chats:
        raise BadArgument(f"{path}: not an experiment file written by replay.py")
    s = doc.settings
    return Experiment(
        name=path.stem,
        path=path,
        ran_at=_ran_at(path),
        chats=[c for c in chats if c is not None],
        prompt=s.prompt,
        persona=s.persona,
        model=s.model,
        config=s.config,
    )


def _ran_at(path: Path) -> float:
    """When the experiment ran: its name starts with the UTC time, else the file's mtime."""
    try:
        return datetime.strptime(path.stem[:16], STAMP).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return path.stat().st_mtime


def config_at(records: Iterable[Recorded], ts: float) -> AppConfig | None:
    """The config the bot had loaded at ``ts`` (the last ``ConfigLoaded`` up to then)."""
    found: ConfigLoaded | None = None
    for rec in records:
        if isinstance(rec.event, ConfigLoaded) and (rec.ts <= ts or found is None):
            found = rec.event
    if found is None:
        return None
    return config_from_dict(found.config, source=f"ConfigLoaded {found.hash[:12]} in the log")


def apply(experiment: Experiment, target: Path, base: AppConfig | None) -> list[str]:
    """Rewrite ``target`` with the experiment's settings; the key paths changed.

    Raises ``Conflict`` (nothing written) when a field to change was edited
    since the experiment ran; returns [] when app.json already has them all.
    """
    if experiment.config is not None and Path(experiment.config).resolve() != target.resolve():
        raise BadArgument(
            f"experiment {experiment.name} replayed under --config {experiment.config}, "
            f"not {target}; pass --config {experiment.config} to apply it there"
        )
    if experiment.prompt is None and experiment.persona is None and experiment.model is None:
        raise BadArgument(f"experiment {experiment.name} changed no prompt, persona or model")
    data = _read(target)
    current = _parse(target, data)
    raw: dict[str, Any] = json.loads(data)
    changed = _entity_changes(experiment, current, base, raw, target)
    if experiment.model is not None:
        was = base.llm.model if base is not None else current.llm.model
        if _changes("llm.model", current.llm.model, was, experiment, target):
            raw.setdefault("llm", {})["model"] = experiment.model
            changed.append("llm.model")
    if not changed:
        return []
    new = _dump(raw, data.decode())
    _parse(target, new)  # what the bot will load must load
    _write(target, data, new, experiment)
    return changed


def _entity_changes(
    experiment: Experiment,
    current: AppConfig,
    base: AppConfig | None,
    raw: dict[str, Any],
    target: Path,
) -> list[str]:
    changed = []
    for chat in experiment.chats:
        entity = current.find_entity(chat)
        if entity is None:
            raise Conflict(f"{target}: {chat} is no longer a monitored chat")
        index = current.monitored_entities.index(entity)
        before = base.find_entity(chat) if base is not None else None
        now = current.entity_prompt(entity)
        was = base.entity_prompt(before) if base is not None and before is not None else now
        for i, field in enumerate(_FIELDS):
            where = f"monitored_entities[{index}].{field}"
            if _changes(where, now[i], was[i], experiment, target):
                raw["monitored_entities"][index][field] = getattr(experiment, field)
                changed.append(where)
    return changed


def _changes(where: str, now: str, was: str, experiment: Experiment, target: Path) -> bool:
    """Whether ``where`` must be written; raises ``Conflict`` if it was edited since."""
    wanted = getattr(experiment, where.rpartition(".")[2])
    if wanted is None or now == wanted:
        return False
    if now != was:
        raise Conflict(
            f"{target}: {where} changed since experiment {experiment.name} ran "
            f"({_short(was)} then, {_short(now)} now); run the experiment again "
            "or edit app.json by hand"
        )
    return True


def _write(target: Path, old: bytes, new: bytes, experiment: Experiment) -> None:
    def unchanged() -> None:
        if _read(target) != old:
            raise Conflict(f"{target} changed while applying; nothing written, run apply again")

    marker = {
        "experiment": experiment.name,
        "hash": hashlib.sha256(new).hexdigest(),
        "file": str(experiment.path.resolve()),
        "note": "written by replay.py apply: the bot's ConfigLoaded names this experiment "
        "while app.json has this sha256; safe to delete",
    }
    # The marker first: the bot may reload app.json the moment it is renamed. It sits
    # where the bot looks (beside the path it loads), while a symlinked app.json
    # stays a symlink: the file it points to is the one replaced.
    # Both keep app.json's owner, so a bot running as another user (a service
    # account) can still read them after root applied an experiment.
    real = target.resolve()
    st = real.stat()
    owner = (st.st_uid, st.st_gid)
    marker_path = target.with_name(target.name + MARKER_SUFFIX)
    marker_bytes = json.dumps(marker, indent=2).encode() + b"\n"
    replace_file(marker_path, marker_bytes, mode=FILE_MODE, owner=owner)
    mode = st.st_mode & 0o7777
    replace_file(real, new, mode=mode, durable=True, owner=owner, before=unchanged)


def _dump(raw: dict[str, Any], original: str) -> bytes:
    """JSON in the original's style: its indentation (or none), its final newline."""
    text = json.dumps(raw, indent=_indent(original), ensure_ascii=False)
    return (text + ("\n" if original.endswith("\n") else "")).encode()


def _indent(text: str) -> str | None:
    """The first indented line's leading whitespace: one level, as editors write it."""
    for line in text.splitlines()[1:]:
        body = line.lstrip(" \t")
        if body and len(body) < len(line):
            return line[: len(line) - len(body)]
    return None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BadArgument(f"{path}: cannot read ({exc.strerror or exc})") from None


def _parse(path: Path, data: bytes) -> AppConfig:
    try:
        raw = json.loads(data)
    except ValueError as exc:
        raise BadArgument(f"{path}: not valid JSON ({exc})") from None
    try:
        return config_from_dict(raw, source=str(path))
    except ConfigError as exc:
        raise BadArgument(str(exc)) from None


def _short(text: str) -> str:
    shown = repr(text)
    return shown if len(shown) <= _SHOWN else shown[: _SHOWN - 1] + "…"
