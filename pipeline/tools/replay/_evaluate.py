"""Replay many chats' turns under new settings and, with ``--judge``, judge every turn.

The turns of all chosen chats are pooled in log order, narrowed by time,
``--limit`` and a seeded ``--sample``, replayed through the cached client, then
judged pairwise; the judge's calls go through the same client and cache, so a
killed run started again asks only what it had not been answered yet.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import msgspec

from events.model import Recorded
from pipeline.tools.replay._judge import Case, Judge, Judgement, judge_turns
from pipeline.tools.replay._output import (
    new_fields,
    new_reply,
    old_fields,
    old_reply,
    totals,
    turn_head,
    user_said,
)
from pipeline.tools.replay._progress import Progress
from pipeline.tools.replay._reference import owner_replies
from pipeline.tools.replay._runner import Llm, NewReply, replay
from pipeline.tools.replay._variant import Variant
from projections.calls import Call, calls

T = TypeVar("T")
# Worse first: what the owner must look at before applying comes at the top.
RANK = {"loss": 0, "unjudged": 1, "tie": 2, "win": 3}


class Turn(msgspec.Struct, frozen=True, kw_only=True):
    chat: str
    name: str  # how the owner calls the chat (entity name, else the number)
    call: Call
    reference: str | None = None  # what the owner wrote by hand right after


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """A run: the turns, their new replies and, when judged, the judgements."""

    turns: list[Turn]
    new: dict[str, NewReply]
    judged: dict[str, Judgement] | None = None

    def verdict(self, turn: Turn) -> str | None:
        if self.judged is None:
            return None
        return self.judged[turn.call.call_id].verdict

    def worse_first(self) -> list[Turn]:
        """Losses, then unjudged, ties and wins; log order within each."""
        return sorted(self.turns, key=lambda t: RANK.get(self.verdict(t) or "", 0))


def gather(histories: Iterable[tuple[str, str, Sequence[Recorded]]]) -> list[Turn]:
    """Every LLM turn of the ``(chat, name, records)`` histories, in log order."""
    turns = []
    for chat, name, records in histories:
        references = owner_replies(records, chat)
        turns += [
            Turn(chat=chat, name=name, call=c, reference=references.get(c.call_id))
            for c in calls(records, chat)
        ]
    return sorted(turns, key=lambda t: t.call.seq)


def select(
    items: Sequence[T],
    when: Callable[[T], float],
    since: float | None,
    until: float | None,
    limit: int | None,
) -> list[T]:
    """The items inside ``[since, until]``, at most the earliest ``limit``."""
    chosen = [
        t
        for t in items
        if (since is None or when(t) >= since) and (until is None or when(t) <= until)
    ]
    return chosen[:limit]


def sample(items: Sequence[T], size: int | None, seed: int) -> list[T]:
    """``size`` of ``items`` picked at random but reproducibly (the same seed, the same
    turns, so a repeated run is served by the cache), kept in their order."""
    if size is None or size >= len(items):
        return list(items)
    picked = random.Random(seed).sample(range(len(items)), size)
    return [items[i] for i in sorted(picked)]


def case_for(turn: Turn, reply: NewReply) -> Case | str:
    """What the judge is shown, or why the turn cannot be judged."""
    old = old_reply(turn.call)
    if old is None:
        return f"no recorded reply ({turn.call.outcome.error or 'never answered'})"
    new = new_reply(reply)
    if new is None:
        return f"the new call failed: {reply.error}"
    messages = turn.call.request.messages
    context = [m for m in messages[:-1] if m.role != "system"]
    return Case(
        chat=turn.chat,
        context=context,
        user=user_said(turn.call) or messages[-1].content,
        old=old,
        new=new,
        reference=turn.reference,
    )


async def run(
    turns: list[Turn], variant: Variant, llm: Llm, *, concurrency: int, judge: Judge | None
) -> Outcome:
    progress = Progress("replaying", len(turns))
    try:
        new = await replay(
            [t.call for t in turns], variant, llm, concurrency=concurrency, on_done=progress.step
        )
    finally:
        progress.clear()
    if judge is None:
        return Outcome(turns=turns, new=new)
    cases = {t.call.call_id: case_for(t, new[t.call.call_id]) for t in turns}
    progress = Progress("judging", len(turns))
    try:
        judged = await judge_turns(judge, cases, concurrency=concurrency, on_done=progress.step)
    finally:
        progress.clear()
    return Outcome(turns=turns, new=new, judged=judged)


def evaluation_doc(
    outcome: Outcome,
    *,
    experiment: str,
    chats: Sequence[str],
    settings: Mapping[str, Any],
    report: Mapping[str, Any],
    files: Mapping[str, str],
) -> dict[str, Any]:
    """The ``--json`` document and experiment file of a run across chats or judged."""
    return {
        "experiment": experiment,
        "chats": list(chats),
        "settings": dict(settings),
        "turns": [_turn(outcome, t) for t in outcome.worse_first()],
        "summary": totals([t.call for t in outcome.turns], outcome.new),
        "report": dict(report),
        "files": dict(files),
    }


def _turn(outcome: Outcome, t: Turn) -> dict[str, Any]:
    judged = outcome.judged[t.call.call_id] if outcome.judged is not None else None
    return {
        "chat": t.chat,
        "name": t.name,
        **turn_head(t.call),
        "old": old_fields(t.call),
        "new": new_fields(outcome.new[t.call.call_id]),
        "reference": t.reference,
        "judge": msgspec.to_builtins(judged) if judged is not None else None,
    }
