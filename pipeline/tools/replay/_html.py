"""The evaluation as one self-contained HTML page (no scripts, no remote assets)."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from pipeline.tools.replay._saved import ExperimentDoc, Forgotten, TurnDoc

_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:70em;padding:0 1em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:2em}
table{border-collapse:collapse}td,th{padding:.25em .7em;vertical-align:top;text-align:left}
.figures td:not(:first-child){text-align:right}
.turn{border:1px solid #ccc;border-radius:6px;margin:1.2em 0;padding:.6em 1em}
.turn h3{font-size:1em;margin:.2em 0 .6em}
.pair{width:100%;table-layout:fixed}.pair td{border-top:1px solid #eee;width:50%}
pre{white-space:pre-wrap;word-wrap:break-word;margin:0;font:inherit}
.user,.owner{background:#f4f4f4;border-radius:4px;padding:.3em .6em;margin:.3em 0}
.owner{background:#eef6ee}.muted{color:#666}
.v{font-weight:bold;padding:0 .4em;border-radius:3px}
.loss{background:#fbd5d5}.win{background:#d5f5d5}.tie{background:#eee}.unjudged{background:#fde9c5}
"""


def report_html(doc: ExperimentDoc) -> str:
    """The page of a saved experiment: rendered from the file, so it always says what it says."""
    name = escape(doc.experiment)
    judged = doc.report.get("judge") is not None
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Replay {name}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Replay experiment {name}</h1>",
        _settings(doc.settings),
        _figures(doc.report),
        _forgotten(doc.forgotten),
        "<h2>Turns, worse first</h2>" if judged else "<h2>Turns</h2>",
        *(_turn(t) for t in doc.turns),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _forgotten(forgotten: Forgotten | None) -> str:
    if forgotten is None:
        return ""
    return (
        f'<p class="muted">{forgotten.turns} turns of {len(forgotten.chats)} forgotten '
        "chats were removed after this run (python -m pipeline forget); the figures "
        "above still count them.</p>"
    )


def _settings(settings: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{escape(key)}</th><td><pre>{escape(str(value))}</pre></td></tr>"
        for key, value in settings.items()
        if value is not None
    )
    return f"<h2>Settings tried</h2><table>{rows}</table>"


def _figures(f: Mapping[str, Any]) -> str:
    out = [f"<h2>Result</h2><p>{f['turns']} turns from {f['chats']} chats.</p>"]
    judge = f["judge"]
    if judge is not None:
        v, w = judge["verdicts"], judge["win_rate"]
        out.append(
            f"<p>Judge <b>{escape(str(judge['model']))}</b>, every turn asked twice with the "
            f"replies swapped: new better <b>{v['win']}</b>, tie <b>{v['tie']}</b>, "
            f"new worse <b>{v['loss']}</b>, unjudged <b>{v['unjudged']}</b>.</p>"
        )
        if w["rate"] is not None:
            low, high = w["ci95"]
            out.append(
                f"<p>New wins {100 * w['rate']:.1f} % of {w['decided']} decided turns; "
                f"95 % confidence interval {100 * low:.1f}&ndash;{100 * high:.1f} % "
                f"({escape(w['method'])}): <b>{escape(w['conclusion'])}</b>.</p>"
            )
    rows = [
        ("cost", f["per_turn"]["cost_usd"], "${:.4f}"),
        ("latency", f["per_turn"]["latency_ms"], "{:.0f} ms"),
        ("reply length", f["per_turn"]["reply_chars"], "{:.0f} chars"),
    ]
    cells = "".join(
        f"<tr><td>{label}</td><td>{_fmt(fmt, c['old'])}</td><td>{_fmt(fmt, c['new'])}</td>"
        f"<td>{_pct(c['change'])}</td></tr>"
        for label, c, fmt in rows
    )
    out.append(
        '<table class="figures"><tr><th>per turn</th><th>old</th><th>new</th><th>change</th>'
        f"</tr>{cells}</table>"
    )
    spent = f"${f['spent_now_usd']:.4f}"
    judge_cost = f", judge ${judge['cost_usd']:.4f} in all" if judge is not None else ""
    out.append(f'<p class="muted">Spent by this run {spent}{judge_cost}.</p>')
    return "\n".join(out)


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:+.1f} %"


def _fmt(fmt: str, value: float | None) -> str:
    return "unknown" if value is None else fmt.format(value)


def _turn(t: TurnDoc) -> str:
    judged = t.judge
    badge = (
        f'<span class="v {escape(judged.verdict)}">{escape(judged.verdict)}</span> '
        if judged
        else ""
    )
    where = escape(f"{t.name or t.chat or ''} · turn {t.turn} · seq {t.seq} · {t.at}")
    head = f"<h3>{badge}{where}</h3>"
    user = t.user if t.user is not None else "(input not in the log)"
    parts = [head, f'<div class="user"><pre>{escape(user)}</pre></div>']
    if t.reference is not None:
        parts.append(
            f'<div class="owner"><span class="muted">owner wrote:</span>'
            f"<pre>{escape(t.reference)}</pre></div>"
        )
    old = (
        t.old.reply if t.old.reply is not None else f"(no reply: {t.old.error or 'never answered'})"
    )
    new = t.new.reply if t.new.reply is not None else f"(failed: {t.new.error})"
    parts.append(
        '<table class="pair"><tr><th>old</th><th>new</th></tr>'
        f"<tr><td><pre>{escape(old)}</pre></td><td><pre>{escape(new)}</pre></td></tr></table>"
    )
    if judged is not None:
        parts.append(f"<p><b>judge:</b> {escape(judged.reason)}</p>")
        parts += [
            f'<p class="muted">raw answer ({escape(o.first)} reply first): '
            f"<code>{escape(o.raw[-1])}</code></p>"
            for o in judged.orders
            if o.answer is None and o.raw
        ]
    return f'<div class="turn">{"".join(parts)}</div>'
