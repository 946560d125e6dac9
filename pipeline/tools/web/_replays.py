"""Replay experiments (``STORE/replays/*.json``, written by ``replay.py``), read for the pages.

Only files directly in that folder whose names ``replay.py`` could have
written are read; a file that does not parse is listed with the reason.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

import msgspec

from pipeline.tools.replay import ExperimentDoc, read_doc

REPLAYS = "replays"
_NAME = re.compile(r"[\w.-]+\.json")
_WORDS = re.compile(r"\s+|[^\s]+")


@dataclass
class ExperimentFile:
    name: str
    mtime: float
    experiment: ExperimentDoc | None
    error: str | None = None


def experiments(store: Path) -> list[ExperimentFile]:
    """Every experiment of the store, newest first."""
    folder = store / REPLAYS
    try:
        paths = [p for p in folder.iterdir() if p.is_file() and _NAME.fullmatch(p.name)]
    except OSError:
        return []
    found = [_load(p) for p in paths]
    return sorted(found, key=lambda f: (-f.mtime, f.name))


def experiment(store: Path, name: str) -> ExperimentFile | None:
    """The experiment file called ``name``; None if there is none (or the name is not one)."""
    if not _NAME.fullmatch(name):
        return None
    path = store / REPLAYS / name
    return _load(path) if path.is_file() else None


def _load(path: Path) -> ExperimentFile:
    try:
        mtime = path.stat().st_mtime
        return ExperimentFile(path.name, mtime, read_doc(path.read_bytes()))
    except OSError as exc:
        return ExperimentFile(path.name, 0.0, None, f"cannot read ({exc.strerror or exc})")
    except msgspec.DecodeError as exc:
        return ExperimentFile(path.name, mtime, None, f"not a replay experiment ({exc})")


def word_diff(old: str, new: str) -> list[tuple[str, str]]:
    """``(op, text)`` pieces, op ``same``, ``del`` (only in old) or ``ins`` (only in new)."""
    a, b = _WORDS.findall(old), _WORDS.findall(new)
    pieces: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            pieces.append(("same", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            pieces.append(("del", "".join(a[i1:i2])))
        if j2 > j1:
            pieces.append(("ins", "".join(b[j1:j2])))
    return pieces
