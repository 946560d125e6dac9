"""Charts as inline SVG, drawn on the server: no script, no library, readable offline.

Every mark has a ``<title>`` (the browser shows it on hover) with its exact
value; text is escaped like everything else on the pages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from markupsafe import Markup

WIDTH, HEIGHT = 640, 170
LEFT, RIGHT, TOP, BOTTOM = 56, 8, 10, 22
BAR_ROW = 22
Format = Callable[[float], str]


def _plain(value: float) -> str:
    return f"{value:g}"


def _frame(title: str, height: int, body: list[Markup]) -> Markup:
    head = Markup(
        '<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{t}"'
        ' xmlns="http://www.w3.org/2000/svg"><title>{t}</title>'
    ).format(w=WIDTH, h=height, t=title)
    return head + Markup("").join(body) + Markup("</svg>")


def _axes(labels: Sequence[str], top: float, fmt: Format) -> list[Markup]:
    base = HEIGHT - BOTTOM
    return [
        Markup('<line class="axis" x1="{x}" y1="{y}" x2="{x2}" y2="{y}"/>').format(
            x=LEFT, y=base, x2=WIDTH - RIGHT
        ),
        Markup('<text class="tick" x="{x}" y="{y}" text-anchor="end">{v}</text>').format(
            x=LEFT - 4, y=TOP + 8, v=fmt(top)
        ),
        Markup('<text class="tick" x="{x}" y="{y}" text-anchor="end">0</text>').format(
            x=LEFT - 4, y=base
        ),
        Markup('<text class="tick" x="{x}" y="{y}">{v}</text>').format(
            x=LEFT, y=HEIGHT - 6, v=labels[0] if labels else ""
        ),
        Markup('<text class="tick" x="{x}" y="{y}" text-anchor="end">{v}</text>').format(
            x=WIDTH - RIGHT, y=HEIGHT - 6, v=labels[-1] if labels else ""
        ),
    ]


def bars(
    title: str, labels: Sequence[str], values: Sequence[float], fmt: Format = _plain
) -> Markup:
    """One bar per label (a day), scaled to the largest value."""
    top = max(values, default=0) or 1
    step = (WIDTH - LEFT - RIGHT) / max(len(values), 1)
    span = HEIGHT - TOP - BOTTOM
    body = _axes(labels, top, fmt)
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = span * value / top
        body.append(
            Markup(
                '<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}">'
                "<title>{label}: {v}</title></rect>"
            ).format(
                x=LEFT + i * step + 1,
                y=HEIGHT - BOTTOM - h,
                w=max(step - 2, 1),
                h=h,
                label=label,
                v=fmt(value),
            )
        )
    return _frame(title, HEIGHT, body)


def lines(
    title: str,
    labels: Sequence[str],
    series: dict[str, Sequence[float | None]],
    fmt: Format = _plain,
) -> Markup:
    """One polyline per series (gaps where a value is None), with a dot per value."""
    found = [v for values in series.values() for v in values if v is not None]
    top = max(found, default=0) or 1
    step = (WIDTH - LEFT - RIGHT) / max(len(labels) - 1, 1)
    span = HEIGHT - TOP - BOTTOM
    body = _axes(labels, top, fmt)
    for n, (name, values) in enumerate(series.items()):
        points = [
            (LEFT + i * step, HEIGHT - BOTTOM - span * v / top, labels[i], v)
            for i, v in enumerate(values)
            if v is not None
        ]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points)
        body.append(Markup('<polyline class="line s{n}" points="{p}"/>').format(n=n, p=path))
        body += [
            Markup(
                '<circle class="dot s{n}" cx="{x:.1f}" cy="{y:.1f}" r="2.5">'
                "<title>{label} {name}: {v}</title></circle>"
            ).format(n=n, x=x, y=y, label=label, name=name, v=fmt(v))
            for x, y, label, v in points
        ]
    return _frame(title, HEIGHT, body)


def hbars(title: str, items: Sequence[tuple[str, int]]) -> Markup:
    """One labelled horizontal bar per item (e.g. failures by reason)."""
    if not items:
        return Markup('<p class="muted">none</p>')
    top = max(v for _, v in items) or 1
    height = TOP + BAR_ROW * len(items)
    label_w = 220
    span = WIDTH - label_w - 60
    body = []
    for i, (label, value) in enumerate(items):
        y = TOP + i * BAR_ROW
        w = max(span * value / top, 1)
        body.append(
            Markup(
                '<text class="tick" x="{lx}" y="{ty}" text-anchor="end">{label}</text>'
                '<rect class="bar" x="{x}" y="{y}" width="{w:.1f}" height="{h}">'
                "<title>{label}: {v}</title></rect>"
                '<text class="tick" x="{vx:.1f}" y="{ty}">{v}</text>'
            ).format(
                lx=label_w - 6,
                ty=y + 14,
                label=label,
                x=label_w,
                y=y + 3,
                w=w,
                h=BAR_ROW - 6,
                v=value,
                vx=label_w + w + 4,
            )
        )
    return _frame(title, height + 4, body)
