"""What the owner wrote by hand right after a bot's turn: the judge's reference answer.

A takeover is the owner writing in a monitored chat from the phone; the bot
records it (``MessageReceived`` with ``from_me``, skipped as ``takeover``, or
``own_message`` when takeovers are off) and stays silent. When that happens
within ``takeover.minutes`` of an LLM call in the chat, before anybody else
writes there, the owner's text is the best answer to that turn anyone has.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from events.model import ConfigLoaded, LlmRequested, MessageReceived, MessageSkipped, Recorded

OWNER_REASONS = frozenset({"takeover", "own_message"})
_DEFAULT_MINUTES = 30.0


def owner_replies(records: Iterable[Recorded], chat: str) -> dict[str, str]:
    """Call id -> the owner's messages (joined by newlines) written right after that call."""
    windows: dict[str, float] = {}  # config hash -> seconds
    own: dict[str, str] = {}  # the owner's messages in the chat, by id, until decided
    last: tuple[str, float, float] | None = None  # call id, ts, window end
    found: dict[str, list[str]] = {}
    for rec in records:
        ev = rec.event
        if isinstance(ev, ConfigLoaded):
            windows[ev.hash] = _minutes(ev.config) * 60
        elif ev.chat != chat:
            continue
        elif isinstance(ev, LlmRequested) and not ev.rounds:  # a later round is the same turn
            last = (ev.call_id, rec.ts, rec.ts + windows.get(ev.config_hash, _DEFAULT_MINUTES * 60))
        elif isinstance(ev, MessageReceived):
            if ev.from_me:
                own[ev.msg_id] = ev.text
            else:
                last = None  # someone else wrote: what the owner says next answers them
        elif isinstance(ev, MessageSkipped) and ev.msg_id in own:
            text = own.pop(ev.msg_id)
            answered = ev.reason in OWNER_REASONS and text.strip()
            if answered and last is not None and rec.ts <= last[2]:
                found.setdefault(last[0], []).append(text)
    return {call_id: "\n".join(texts) for call_id, texts in found.items()}


def _minutes(config: dict[str, Any]) -> float:
    takeover = config.get("takeover")
    minutes = takeover.get("minutes") if isinstance(takeover, dict) else None
    return float(minutes) if isinstance(minutes, int | float) else _DEFAULT_MINUTES
