"""Replay experiments (``STORE/replays/*.json``, written by ``replay.py``), read for the pages.

Only files directly in that folder whose names ``replay.py`` could have
written are read; a file that does not parse is listed with the reason.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from pipeline.tools.replay import VERDICT_WORDS

REPLAYS = "replays"
_COUNTED = {"win": "new better", "tie": "tie", "loss": "new worse", "unjudged": "unjudged"}
_NAME = re.compile(r"[\w.-]+\.json")
_WORDS = re.compile(r"\s+|[^\s]+")


class Reply(msgspec.Struct, frozen=True, kw_only=True):
    reply: str | None = None
    tokens: int | None = None
    cost_usd: float | None = None
    latency_ms: float | None = None
    cached: bool = False
    error: str | None = None


class Judged(msgspec.Struct, frozen=True, kw_only=True):
    verdict: str  # for the new settings: win, tie, loss or unjudged
    reason: str = ""

    @property
    def said(self) -> str:
        return next((w for v, w in VERDICT_WORDS.items() if v == self.verdict), self.verdict)


class ReplayedTurn(msgspec.Struct, kw_only=True):
    turn: int
    seq: int
    at: str = ""
    user: str | None = None
    old: Reply = Reply()
    new: Reply = Reply()
    # A run across chats (``--all``, several ``--chat``, ``--judge``) says whose turn it is.
    chat: str | None = None
    name: str | None = None
    reference: str | None = None  # what the owner wrote by hand right after
    judge: Judged | None = None


class Experiment(msgspec.Struct, kw_only=True):
    """One chat's re-run (``chat``) or a run across chats (``chats``), as replay.py saved it."""

    chat: str | None = None
    chats: list[str] = []
    settings: dict[str, Any] = {}
    turns: list[ReplayedTurn] = []
    summary: dict[str, Any] = {}
    report: dict[str, Any] = {}

    @property
    def all_chats(self) -> list[str]:
        return self.chats or ([self.chat] if self.chat else [])

    @property
    def shown_settings(self) -> list[tuple[str, str]]:
        """The settings that were given (an option left out is not a setting), as text."""
        return [(k, _text(v)) for k, v in self.settings.items() if v is not None]

    @property
    def verdicts(self) -> str | None:
        """The judge's counts in words; None when the run was not judged."""
        judge = self.report.get("judge")
        counts = judge.get("verdicts") if isinstance(judge, dict) else None
        if not isinstance(counts, dict):
            return None
        return ", ".join(
            f"{_COUNTED[v]} {counts.get(v, 0)}" for v in ("win", "tie", "loss", "unjudged")
        )


def _text(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


@dataclass
class ExperimentFile:
    name: str
    mtime: float
    experiment: Experiment | None
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
        return ExperimentFile(
            path.name, mtime, msgspec.json.decode(path.read_bytes(), type=Experiment)
        )
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
