"""One evaluation run from the command line: replay, judge, report, save, print."""

from __future__ import annotations

import argparse
import functools
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import msgspec

from events.jid import user_part
from events.model import Recorded
from pipeline.config import LoadedConfig
from pipeline.tools._args import BadArgument, iso
from pipeline.tools.replay._cache import cached_llm
from pipeline.tools.replay._evaluate import (
    Outcome,
    Turn,
    evaluation_doc,
    gather,
    run,
    sample,
    select,
)
from pipeline.tools.replay._files import reserve, write_private
from pipeline.tools.replay._html import report_html
from pipeline.tools.replay._judge import DEFAULT_RUBRIC, Judge
from pipeline.tools.replay._output import summary_line
from pipeline.tools.replay._report import report, report_text
from pipeline.tools.replay._saved import read_doc
from pipeline.tools.replay._variant import Variant

EXIT_OK, EXIT_FAILED = 0, 1


class History(msgspec.Struct, frozen=True):
    """One chat's events and every config, as read from the log."""

    chat: str
    name: str  # how the owner calls it
    records: list[Recorded]


def evaluate(
    args: argparse.Namespace, store: Path, histories: Sequence[History], loaded: LoadedConfig
) -> int:
    turns = gather((h.chat, h.name, h.records) for h in histories)
    turns = sample(select(turns, _ts, args.since, args.until, args.limit), args.sample, args.seed)
    prompt, variant = variant_of(args, loaded)
    judge_model = (args.judge_model or loaded.config.llm.model) if args.judge else None
    rubric = read_text(args.rubric, "the rubric") if args.rubric else DEFAULT_RUBRIC
    outcome = anyio.run(
        functools.partial(
            _run,
            loaded,
            store,
            turns,
            variant,
            concurrency=args.concurrency,
            judge_model=judge_model,
            rubric=rubric,
        )
    )
    chats = [h.chat for h in histories]
    settings = {
        **described(args, prompt),
        "chats": "all" if args.all else [h.name for h in histories],
        "since": iso(args.since) if args.since is not None else None,
        "until": iso(args.until) if args.until is not None else None,
        "limit": args.limit,
        "sample": args.sample,
        "seed": args.seed if args.sample is not None else None,
        "judge_model": judge_model,
        "rubric": str(args.rubric) if args.judge and args.rubric else None,
    }
    figures = report(outcome, judge_model)
    label = "all" if args.all else user_part(chats[0]) if len(chats) == 1 else f"{len(chats)}chats"
    path = reserve(store / "replays", label)
    page = path.with_suffix(".html")
    doc = evaluation_doc(
        outcome,
        experiment=path.stem,
        chats=chats,
        settings=settings,
        report=figures,
        files={"json": str(path), "html": str(page)},
    )
    saved = msgspec.json.format(msgspec.json.encode(doc), indent=2)
    write_private(path, saved)
    write_private(page, report_html(read_doc(saved)).encode())
    if args.json:
        print(msgspec.json.encode(doc).decode())
    else:
        print(report_text(outcome, figures, shutil.get_terminal_size().columns))
        print()
        print(_closing(outcome, figures, path, page))
    failed = any(r.error is not None for r in outcome.new.values())
    return EXIT_FAILED if failed or _undecided(outcome) else EXIT_OK


def _undecided(outcome: Outcome) -> bool:
    """Judged, and the judge gave no turn a verdict: nothing says to apply the settings."""
    judged = outcome.judged
    return judged is not None and all(j.verdict == "unjudged" for j in judged.values())


async def _run(
    loaded: LoadedConfig,
    store: Path,
    turns: list[Turn],
    variant: Variant,
    *,
    concurrency: int,
    judge_model: str | None,
    rubric: str,
) -> Outcome:
    async with cached_llm(loaded, store) as llm:
        judge = Judge(llm, judge_model, rubric) if judge_model is not None else None
        return await run(turns, variant, llm, concurrency=concurrency, judge=judge)


def _closing(outcome: Outcome, figures: dict[str, Any], path: Path, page: Path) -> str:
    line = summary_line([t.call for t in outcome.turns], outcome.new)
    if figures["judge"] is not None:
        line += f", judge cost ${figures['judge']['cost_usd']:.4f}"
    saved = f"{line}; experiment {path.stem} saved to {path} and {page}"
    if _undecided(outcome):
        unjudged = len(outcome.turns)
        return (
            f"{saved}\nthe judge decided no turn ({unjudged} unjudged): nothing to apply;"
            " run the same command again to ask the judge once more"
        )
    return f"{saved}\nto use these settings: python replay.py apply {path.stem}"


def variant_of(args: argparse.Namespace, loaded: LoadedConfig) -> tuple[str | None, Variant]:
    """The new prompt (read from ``--prompt-file`` if given) and the settings to replay with."""
    prompt = read_text(args.prompt_file, "the prompt") if args.prompt_file else args.prompt
    variant = Variant(
        prompt=prompt,
        persona=args.persona,
        model=args.model,
        config=loaded.config if args.config else None,
        context=args.context,
    )
    return prompt, variant


def described(args: argparse.Namespace, prompt: str | None) -> dict[str, Any]:
    """The settings tried, as the experiment file records them."""
    return {
        "prompt": prompt,
        "persona": args.persona,
        "model": args.model,
        "config": str(args.config) if args.config else None,
        "context": args.context,
    }


def read_text(path: Path, what: str) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadArgument(f"{path}: cannot read {what} ({exc})") from None


def _ts(turn: Turn) -> float:
    return turn.call.ts
