"""An LLM compares the recorded and the replayed reply of a turn, pairwise.

Each turn is asked twice, the recorded reply shown first once and second
once: judges prefer whichever comes first (or second) more often than chance,
and swapping cancels that. Only a verdict both orders agree on counts; when
they disagree the turn is a tie. An answer that is not the asked-for JSON is
asked once more (a new request), then the order is "unjudged", its raw text
kept in the report. Only readable answers are cached, so a later run of the
same evaluation asks the judge again where it got no verdict.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import anyio
import msgspec

from events.model import ChatTurn
from pipeline.llm import LlmError, LlmResult, Prompt
from pipeline.tools.replay._runner import Llm

Verdict = Literal["win", "tie", "loss", "unjudged"]  # for the new settings
# How reports and the console say a verdict on the new settings.
VERDICT_WORDS: dict[Verdict, str] = {
    "win": "better",
    "loss": "worse",
    "tie": "tie",
    "unjudged": "unjudged",
}
Answer = Literal["A", "B", "tie"]
Side = Literal["old", "new"]
SIDES: tuple[Side, Side] = ("old", "new")

DEFAULT_RUBRIC = """\
You judge replies of a personal WhatsApp assistant that answers messages on its
owner's behalf. Prefer the reply that answers the latest message correctly and
helpfully, in the language and tone of the conversation, and no longer than the
question needs. A longer reply is not better for being longer. When the owner's
own reply is given, prefer the reply that comes closer to what the owner meant."""
ANSWER_FORMAT = (
    'Answer with one JSON object and nothing else: {"verdict": "A", "B" or "tie", '
    '"reason": "one short sentence"}.'
)
REPAIR = "That answer could not be read. " + ANSWER_FORMAT
ATTEMPTS = 2  # the question, then one repair
PARAMS = {"temperature": 0.0, "max_output_tokens": 256, "web_search": False}
_REASON_CHARS = 200
_ANSWERS: dict[str, Answer] = {"a": "A", "b": "B", "tie": "tie"}


class Case(msgspec.Struct, frozen=True, kw_only=True):
    """What the judge sees of one turn (of ``chat``, whose cache folder keeps the verdicts)."""

    chat: str
    context: list[ChatTurn]  # the conversation before the user's message
    user: str
    old: str
    new: str
    reference: str | None = None  # what the owner wrote by hand right after


class Asked(msgspec.Struct, frozen=True, kw_only=True):
    """One order: which reply was shown as A, what the judge answered and what it cost."""

    first: Side
    answer: Answer | None = None  # None: unreadable or failed
    reason: str = ""
    raw: list[str] = []  # every answer text, the unreadable ones too
    cost_usd: float = 0.0
    spent_usd: float = 0.0  # the part not served by the cache
    calls: int = 0
    cached: int = 0
    error: str | None = None


class Judgement(msgspec.Struct, frozen=True, kw_only=True):
    verdict: Verdict
    reason: str
    orders: list[Asked] = []


class Judge:
    """Asks ``model`` through ``llm`` (the replay's client and cache) under ``rubric``."""

    def __init__(self, llm: Llm, model: str, rubric: str = DEFAULT_RUBRIC) -> None:
        self.llm = llm
        self.model = model
        self.rubric = rubric.strip()

    def prompt(self, case: Case, first: Side) -> Prompt:
        system = f"{self.rubric}\n\n{ANSWER_FORMAT}"
        turns = [ChatTurn("system", system), ChatTurn("user", question(case, first))]
        return Prompt(model=self.model, params=dict(PARAMS), messages=turns)

    async def ask(self, case: Case, first: Side) -> Asked:
        """One order, asked again once if the answer cannot be read."""
        prompt = self.prompt(case, first)
        asked = Asked(first=first)
        for _ in range(ATTEMPTS):
            try:
                result, cached = await self.llm.complete(prompt, case.chat, keep=_readable)
            except LlmError as exc:
                return msgspec.structs.replace(asked, error=f"judge call failed: {exc}")
            asked = _counted(asked, result, cached=cached)
            parsed = parse_answer(result.content)
            if parsed is not None:
                return msgspec.structs.replace(asked, answer=parsed[0], reason=parsed[1])
            said = ChatTurn("assistant", result.content.strip() or "(empty)")
            prompt = msgspec.structs.replace(
                prompt, messages=[*prompt.messages, said, ChatTurn("user", REPAIR)]
            )
        return msgspec.structs.replace(
            asked, error=f"unreadable judge answer after {ATTEMPTS} tries"
        )


def question(case: Case, first: Side) -> str:
    """The user turn of the judge's prompt, reply A being the ``first`` side."""
    a, b = (case.old, case.new) if first == "old" else (case.new, case.old)
    parts = []
    if case.context:
        lines = "\n".join(f"[{t.role}] {t.content}" for t in case.context)
        parts.append(f"The conversation so far:\n{lines}")
    parts += [
        f"The latest message:\n{case.user}",
        f"Reply A:\n{quoted(a)}",
        f"Reply B:\n{quoted(b)}",
    ]
    if case.reference is not None:
        parts.append(
            "The owner of the account answered this chat by hand right after; "
            f"their reply shows what they wanted:\n{quoted(case.reference)}"
        )
    parts.append(f"Which reply is better? {ANSWER_FORMAT}")
    return "\n\n".join(parts)


def quoted(text: str) -> str:
    return f"<<<\n{text}\n>>>"


def parse_answer(text: str) -> tuple[Answer, str] | None:
    """``(answer, one-line reason)`` from the judge's text, or None when unreadable.

    Accepts the object inside prose or a code fence, as models tend to add both.
    """
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        return None
    try:
        # strict=False: models put raw newlines inside strings now and then.
        found = json.loads(text[start : end + 1], strict=False)
    except ValueError:
        return None
    if not isinstance(found, dict) or not isinstance(found.get("verdict"), str):
        return None
    answer = _ANSWERS.get(found["verdict"].strip().casefold())
    if answer is None:
        return None
    reason = found.get("reason")
    return answer, one_line(reason) if isinstance(reason, str) else ""


def _readable(result: LlmResult) -> bool:
    """Only verdicts are cached: an unreadable answer is asked again by the next run."""
    return parse_answer(result.content) is not None


def one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _REASON_CHARS else line[: _REASON_CHARS - 1] + "…"


def for_new(asked: Asked) -> Verdict:
    """The order's answer as a verdict on the new reply."""
    if asked.answer is None:
        return "unjudged"
    if asked.answer == "tie":
        return "tie"
    new_is_a = asked.first == "new"
    return "win" if (asked.answer == "A") == new_is_a else "loss"


def combine(orders: Sequence[Asked]) -> Judgement:
    """Both orders agree: their verdict; they disagree: a tie; one unreadable: unjudged."""
    seen = [for_new(o) for o in orders]
    broken = next((o for o in orders if o.answer is None), None)
    if broken is not None:
        side = "recorded" if broken.first == "old" else "new"
        return Judgement(
            verdict="unjudged",
            reason=f"{broken.error} ({side} reply shown first)",
            orders=list(orders),
        )
    if len(set(seen)) == 1:
        reason = next((o.reason for o in orders if o.reason), "")
        return Judgement(verdict=seen[0], reason=reason, orders=list(orders))
    return Judgement(
        verdict="tie",
        reason=f"the two orders disagree: {seen[0]} with the recorded reply first, "
        f"{seen[1]} with the new one first",
        orders=list(orders),
    )


async def judge_turns(
    judge: Judge,
    cases: Mapping[str, Case | str],
    *,
    concurrency: int,
    on_done: Callable[[], None] = lambda: None,
) -> dict[str, Judgement]:
    """A judgement per key of ``cases``; a str case is why that turn cannot be judged.

    Identical replies are a tie without asking; every other case costs two
    calls, at most ``concurrency`` in flight.
    """
    limiter = anyio.CapacityLimiter(concurrency)
    judged: dict[str, Judgement] = {}

    async def one(key: str, case: Case | str) -> None:
        if isinstance(case, str):
            judged[key] = Judgement(verdict="unjudged", reason=case)
        elif case.old.strip() == case.new.strip():
            judged[key] = Judgement(verdict="tie", reason="identical replies (no judge call)")
        else:
            asked: dict[Side, Asked] = {}
            async with anyio.create_task_group() as tg:
                for first in SIDES:
                    tg.start_soon(ask, case, first, asked)
            judged[key] = combine([asked[side] for side in SIDES])
        on_done()

    async def ask(case: Case, first: Side, asked: dict[Side, Asked]) -> None:
        async with limiter:
            asked[first] = await judge.ask(case, first)

    async with anyio.create_task_group() as tg:
        for key, case in cases.items():
            tg.start_soon(one, key, case)
    return judged


def _counted(asked: Asked, result: LlmResult, *, cached: bool) -> Asked:
    cost = result.usage.cost_usd or 0.0
    return msgspec.structs.replace(
        asked,
        raw=[*asked.raw, result.content],
        cost_usd=asked.cost_usd + cost,
        spent_usd=asked.spent_usd + (0.0 if cached else cost),
        calls=asked.calls + 1,
        cached=asked.cached + cached,
    )
