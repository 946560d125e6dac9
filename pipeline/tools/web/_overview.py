"""The chat list, the dashboard and search, from a ``Snapshot``."""

from __future__ import annotations

import time
from dataclasses import dataclass

from events.jid import is_group
from events.units import DAY
from pipeline.tools.web._console import Snapshot
from pipeline.tools.web._summary import ChatTotals, Day, Text
from pipeline.tools.web._timeline import EventView, event_view
from projections import budget, outbox, sessions, stats, takeover
from projections.spend import KINDS, SPEND_NAMES

DASHBOARD_DAYS = 30
SEARCH_LIMIT = 100
MIN_QUERY = 2


@dataclass
class ChatRow:
    chat: str
    name: str | None
    monitored: bool
    totals: ChatTotals
    session: str  # e.g. "live" / "2 live (one per sender)" / "expired" / "none"
    session_until: float | None  # when the last live conversation ends
    paused_until: float | None  # the owner took over: the bot is silent until then

    @property
    def label(self) -> str:
        return f"{self.name} ({self.chat})" if self.name else self.chat


@dataclass
class DayPoint:
    day: str
    totals: Day
    p50_ms: float | None
    p95_ms: float | None


@dataclass
class Dashboard:
    days: list[DayPoint]
    failures: list[tuple[str, int]]  # by reason, most first
    decisions: list[tuple[str, int]]
    queue_depth: int
    unsent: int
    spent_today: float  # every kind (projections.spend), since the bot's midnight
    spent_today_by_kind: list[tuple[str, float]]  # (the kind's name, USD)
    budget: float | None
    system: list[EventView]  # newest first


@dataclass
class Hit:
    text: Text
    name: str | None
    parts: list[tuple[str, bool]]  # the text cut around the matches (True: a match)


def chat_rows(snap: Snapshot) -> list[ChatRow]:
    """Every chat with events and every monitored one, the latest activity first."""
    names = snap.names
    rows = []
    for chat in dict.fromkeys([*snap.summary.chats, *names]):
        session, until = session_text(snap, chat)
        rows.append(
            ChatRow(
                chat=chat,
                name=names.get(chat),
                monitored=chat in names,
                totals=snap.summary.chats.get(chat) or ChatTotals(),
                session=session,
                session_until=until,
                paused_until=paused_until(snap, chat),
            )
        )
    rows.sort(key=lambda r: (-r.totals.last_ts, r.chat))
    return rows


def chat_row(snap: Snapshot, chat: str) -> ChatRow | None:
    return next((r for r in chat_rows(snap) if r.chat == chat), None)


def session_text(snap: Snapshot, chat: str) -> tuple[str, float | None]:
    """The chat's conversations in words ("live", "expired", "none") and until when."""
    cfg = snap.config
    found = [s for s in snap.states.sessions.sessions.values() if s.chat == chat]
    if not found or cfg is None:
        return "none", None
    memory, tz = cfg.session_memory, cfg.vitality.timezone
    ends = [sessions.expires_at(s, memory.mode, memory.ttl_minutes, tz) for s in found]
    live = [e for e in ends if e is None or e > snap.now]
    if not live:
        return "expired", None
    # A group has a conversation per person in it: say so, or "2 live" reads as a fault.
    count = f"{len(live)} live (one per sender)" if is_group(chat) else "live"
    later = [e for e in live if e is not None]
    return (count, max(later)) if later else (f"{count}, never expires", None)


def paused_until(snap: Snapshot, chat: str) -> float | None:
    cfg = snap.config
    if cfg is None or not cfg.takeover.enabled:
        return None
    until = takeover.paused_until(snap.states.takeover, chat, cfg.takeover.minutes)
    return until if until is not None and until > snap.now else None


def dashboard(snap: Snapshot) -> Dashboard:
    s = snap.summary
    today = int(snap.now // DAY)
    # The budget's day, as the bot counts it (from local midnight); UTC without a config.
    midnight = snap.config.local_midnight(snap.now) if snap.config is not None else today * DAY
    points = []
    for n in range(today - DASHBOARD_DAYS + 1, today + 1):
        key = time.strftime("%Y-%m-%d", time.gmtime(n * DAY))
        day = s.days.get(key) or Day()
        window = stats.State(latencies=day.latencies_ms)
        points.append(
            DayPoint(key, day, stats.percentile(window, 50), stats.percentile(window, 95))
        )
    return Dashboard(
        days=points,
        failures=_ranked(s.failures),
        decisions=_ranked(s.decisions),
        queue_depth=queue_depth(snap),
        unsent=len(outbox.unsent(snap.states.outbox)),
        spent_today=budget.spent_since(snap.states.budget, midnight),
        spent_today_by_kind=[
            (SPEND_NAMES[kind], budget.spent_since(snap.states.budget, midnight, kind))
            for kind in KINDS
        ],
        budget=snap.config.limits.daily_budget_usd if snap.config is not None else None,
        system=[event_view(r) for r in reversed(s.system)],
    )


def queue_depth(snap: Snapshot) -> int:
    """Messages recorded and not decided about yet."""
    return sum(len(items) for items in snap.states.queue.chats.values())


def search(snap: Snapshot, query: str) -> list[Hit]:
    """Messages and replies containing ``query`` (any case), newest first."""
    needle = query.strip().casefold()
    if len(needle) < MIN_QUERY:
        return []
    names = snap.names
    hits = []
    for text in reversed(snap.summary.texts):
        if needle in text.text.casefold():
            hits.append(Hit(text, names.get(text.chat), _cut(text.text, needle)))
            if len(hits) == SEARCH_LIMIT:
                break
    return hits


def _cut(text: str, needle: str) -> list[tuple[str, bool]]:
    folded, parts, at = text.casefold(), [], 0
    # casefold may change lengths (ß -> ss): then show the text whole, unmarked.
    if len(folded) != len(text):
        return [(text, False)]
    while (found := folded.find(needle, at)) != -1:
        parts += [(text[at:found], False), (text[found : found + len(needle)], True)]
        at = found + len(needle)
    return [*parts, (text[at:], False)]


def _ranked(table: dict[str, int]) -> list[tuple[str, int]]:
    return sorted(table.items(), key=lambda kv: (-kv[1], kv[0]))
