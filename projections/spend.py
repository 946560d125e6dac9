"""What the bot spends: the one definition behind the budget, ``stats``, the console and /metrics.

Spend is every cost the log records, by kind: LLM calls (``LlmCompleted``, and
``LlmFailed`` for an answer billed but unusable), transcriptions of voice notes
(``MediaTranscribed``) and spoken replies (``SpeechSynthesized``). A cost the
service did not report counts as nothing. A new paid service is one more kind in
``SpendKind`` and one more entry in ``_COSTS``; the daily budget, every total and
every per-kind figure follow from here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, get_args

from events.model import Event, LlmCompleted, LlmFailed, MediaTranscribed, SpeechSynthesized

SpendKind = Literal["llm", "transcription", "speech"]
KINDS: tuple[SpendKind, ...] = get_args(SpendKind)
SPEND_NAMES: dict[str, str] = {"llm": "LLM", "transcription": "transcription", "speech": "speech"}

_COSTS: dict[type[Event], tuple[SpendKind, Callable[[Any], float | None]]] = {
    LlmCompleted: ("llm", lambda ev: ev.usage.cost_usd),
    LlmFailed: ("llm", lambda ev: ev.usage.cost_usd if ev.usage is not None else None),
    MediaTranscribed: ("transcription", lambda ev: ev.cost_usd),
    SpeechSynthesized: ("speech", lambda ev: ev.cost_usd),
}
# The event types that carry a cost.
SPENDING: tuple[type[Event], ...] = tuple(_COSTS)


def reader(event_type: type[Event]) -> tuple[SpendKind, Callable[[Any], float | None]]:
    """The kind an event type spends and how to read its USD (None: not reported), for a
    fold that binds them once per type instead of looking them up per event."""
    return _COSTS[event_type]


def cost(event: Event) -> tuple[SpendKind, float] | None:
    """The kind and the USD an event spent (0.0 when unknown); None for one that costs nothing."""
    found = _COSTS.get(type(event))
    if found is None:
        return None
    kind, read = found
    return kind, read(event) or 0.0
