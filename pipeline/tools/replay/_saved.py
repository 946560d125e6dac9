"""An experiment file (``STORE/replays/<name>.json``) as read back: by its HTML page, the
web console and ``forget``.

One chat's re-run names its ``chat``; a run across chats (``--all``, several
``--chat``, ``--sample``, ``--judge``) names its ``chats`` and each turn's.
Every field a later version may add is optional, so older files still read.
"""

from __future__ import annotations

from typing import Any

import msgspec

from pipeline.tools.replay._judge import VERDICT_WORDS

_COUNTED = {"win": "new better", "tie": "tie", "loss": "new worse", "unjudged": "unjudged"}


class ReplyDoc(msgspec.Struct, frozen=True, kw_only=True):
    reply: str | None = None
    tokens: int | None = None
    cost_usd: float | None = None
    latency_ms: float | None = None
    cached: bool = False
    error: str | None = None


class OrderDoc(msgspec.Struct, frozen=True, kw_only=True):
    """One order the judge was asked in: which reply it saw first, what it answered."""

    first: str
    answer: str | None = None
    raw: list[str] = []


class JudgementDoc(msgspec.Struct, frozen=True, kw_only=True):
    verdict: str  # on the new settings: win, tie, loss or unjudged
    reason: str = ""
    orders: list[OrderDoc] = []

    @property
    def said(self) -> str:
        return next((w for v, w in VERDICT_WORDS.items() if v == self.verdict), self.verdict)


class TurnDoc(msgspec.Struct, frozen=True, kw_only=True):
    turn: int
    seq: int
    at: str = ""
    user: str | None = None
    old: ReplyDoc = ReplyDoc()
    new: ReplyDoc = ReplyDoc()
    chat: str | None = None  # across chats: whose turn
    name: str | None = None
    reference: str | None = None  # what the owner wrote by hand right after
    judge: JudgementDoc | None = None


class Forgotten(msgspec.Struct, frozen=True, kw_only=True):
    """What ``forget`` took out of a run across chats after it ran: those chats' turns."""

    chats: list[str]
    turns: int


class ExperimentDoc(msgspec.Struct, frozen=True, kw_only=True):
    experiment: str = ""
    chat: str | None = None
    chats: list[str] = []
    settings: dict[str, Any] = {}
    turns: list[TurnDoc] = []
    summary: dict[str, Any] = {}
    report: dict[str, Any] = {}
    forgotten: Forgotten | None = None

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
        return ", ".join(f"{said} {counts.get(v, 0)}" for v, said in _COUNTED.items())


def read_doc(data: bytes) -> ExperimentDoc:
    """The experiment in ``data``; ``msgspec.DecodeError`` when it is not one."""
    doc = msgspec.json.decode(data, type=ExperimentDoc)
    if not doc.all_chats:
        raise msgspec.ValidationError("names no chat (`chat` or `chats`)")
    return doc


def _text(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)
