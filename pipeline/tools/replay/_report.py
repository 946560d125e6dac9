"""The evaluation report: verdicts with a confidence interval, cost, latency and length.

Per-turn figures compare like with like: each mean is taken over the turns
where both the recorded and the new side have that figure.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from pipeline.tools.replay._evaluate import Outcome, Turn
from pipeline.tools.replay._judge import VERDICT_WORDS, Judgement, Verdict
from pipeline.tools.replay._output import old_reply, turn_block
from pipeline.tools.replay._runner import NewReply
from pipeline.tools.replay._stats import change, mean, win_rate

VERDICTS: tuple[Verdict, ...] = ("win", "tie", "loss", "unjudged")
_Pair = tuple[Turn, NewReply]


def report(outcome: Outcome, judge_model: str | None) -> dict[str, Any]:
    pairs = [(t, outcome.new[t.call.call_id]) for t in outcome.turns]
    replay_spent = sum(_cost(r) or 0.0 for _, r in pairs if not r.cached)
    judge = _judge_figures(outcome.judged, judge_model, len(pairs))
    return {
        "turns": len(pairs),
        "chats": len({t.chat for t, _ in pairs}),
        "judge": judge,
        "per_turn": {
            "cost_usd": _compare(pairs, _usage_cost, _cost),
            "latency_ms": _compare(pairs, lambda t: t.call.outcome.latency_ms, _latency),
            "reply_chars": _compare(pairs, _old_chars, _new_chars),
        },
        "spent_now_usd": round(replay_spent + (judge["spent_usd"] if judge else 0.0), 6),
    }


def _judge_figures(
    judged: dict[str, Judgement] | None, model: str | None, turns: int
) -> dict[str, Any] | None:
    if judged is None:
        return None
    counts = Counter(j.verdict for j in judged.values())
    orders = [o for j in judged.values() for o in j.orders]
    cost = sum(o.cost_usd for o in orders)
    rate = win_rate(counts["win"], counts["loss"])
    return {
        "model": model,
        "verdicts": {v: counts[v] for v in VERDICTS},
        "win_rate": {
            "wins": rate.wins,
            "decided": rate.decided,
            "rate": rate.rate,
            "ci95": list(rate.ci95) if rate.ci95 else None,
            "method": rate.method,
            "conclusion": rate.conclusion,
        },
        "calls": sum(o.calls for o in orders),
        "cached": sum(o.cached for o in orders),
        "cost_usd": round(cost, 6),
        "cost_per_turn_usd": cost / turns if turns else None,
        "spent_usd": round(sum(o.spent_usd for o in orders), 6),
    }


def _compare(
    pairs: list[_Pair],
    old: Callable[[Turn], float | None],
    new: Callable[[NewReply], float | None],
) -> dict[str, Any]:
    both = [(a, b) for t, r in pairs if (a := old(t)) is not None and (b := new(r)) is not None]
    old_mean, new_mean = mean(a for a, _ in both), mean(b for _, b in both)
    return {
        "turns": len(both),
        "old": old_mean,
        "new": new_mean,
        "change": change(old_mean, new_mean),
    }


def _usage_cost(t: Turn) -> float | None:
    usage = t.call.outcome.usage
    return usage.cost_usd if usage is not None else None


def _cost(r: NewReply) -> float | None:
    return r.usage.cost_usd if r.usage is not None else None


def _latency(r: NewReply) -> float | None:
    return r.latency_ms


def _old_chars(t: Turn) -> float | None:
    reply = old_reply(t.call)
    return None if reply is None else len(reply)


def _new_chars(r: NewReply) -> float | None:
    return None if r.reply is None else len(r.reply)


# -- for people ---------------------------------------------------------------


def report_text(outcome: Outcome, figures: dict[str, Any], columns: int) -> str:
    """The figures, then the turns, worse first; with a judge, better turns are one line each."""
    lines = [*_figures_text(figures), ""]
    if outcome.judged is None:
        for t in outcome.turns:
            lines += [*_block(outcome, t, columns), ""]
        return "\n".join(lines).rstrip()
    judged = outcome.judged
    for verdict, title in _SECTIONS:
        these = [t for t in outcome.turns if outcome.verdict(t) == verdict]
        if not these:
            continue
        lines.append(f"{title} ({len(these)}):")
        if verdict in ("loss", "unjudged"):
            for t in these:
                lines += ["", *_block(outcome, t, columns)]
        else:
            lines += [f"  {_where(t)}: {judged[t.call.call_id].reason}" for t in these]
        lines.append("")
    return "\n".join(lines).rstrip()


_SECTIONS: tuple[tuple[Verdict, str], ...] = (
    ("loss", "Worse with the new settings"),
    ("unjudged", "Unjudged"),
    ("tie", "Ties"),
    ("win", "Better with the new settings"),
)


def _figures_text(f: dict[str, Any]) -> list[str]:
    lines = [f"{f['turns']} turns from {f['chats']} chats"]
    judge = f["judge"]
    if judge is not None:
        v = judge["verdicts"]
        lines += [
            f"judge {judge['model']}, every turn asked twice with the replies swapped:",
            f"  new better {v['win']}, tie {v['tie']}, new worse {v['loss']}, "
            f"unjudged {v['unjudged']}",
            f"  {_rate_text(judge['win_rate'])}",
        ]
    per = f["per_turn"]
    judge_cost = judge["cost_per_turn_usd"] if judge else None
    lines += [
        f"  {'per turn':<14}{'old':>11}  {'new':>11}",
        _row("cost", per["cost_usd"], _usd)
        + (f"   (judge {_usd(judge_cost)} per turn)" if judge_cost is not None else ""),
        _row("latency", per["latency_ms"], lambda x: f"{x:.0f} ms"),
        _row("reply length", per["reply_chars"], lambda x: f"{x:.0f} chars"),
        f"spent by this run {_usd(f['spent_now_usd'])} (cached answers cost nothing)",
    ]
    return lines


def _rate_text(w: dict[str, Any]) -> str:
    if w["rate"] is None:
        return "no turn decided either way: no win rate"
    low, high = w["ci95"]
    return (
        f"new wins {100 * w['rate']:.1f} % of {w['decided']} decided turns, "
        f"95 % CI {100 * low:.1f}-{100 * high:.1f} % (Wilson, ties excluded): {w['conclusion']}"
    )


def _row(label: str, c: dict[str, Any], fmt: Callable[[float], str]) -> str:
    if not c["turns"]:
        return f"  {label:<14}  unknown"
    delta = f"  ({100 * c['change']:+.1f} %)" if c["change"] is not None else ""
    return f"  {label:<14}{fmt(c['old']):>11}  {fmt(c['new']):>11}{delta}"


def _usd(x: float) -> str:
    return f"${x:.4f}"


def _where(t: Turn) -> str:
    return f"{t.name} turn {t.call.index} (seq {t.call.seq})"


def _block(outcome: Outcome, t: Turn, columns: int) -> list[str]:
    reply = outcome.new[t.call.call_id]
    lines = turn_block(t.call, reply, columns, chat=t.name, reference=t.reference)
    if outcome.judged is not None:
        j = outcome.judged[t.call.call_id]
        lines.append(f"judge ({VERDICT_WORDS[j.verdict]}): {j.reason}")
        for o in j.orders:
            if o.answer is None and o.raw:
                lines.append(f"  raw answer ({o.first} reply first): {o.raw[-1]!r}")
    return lines
