"""``python -m pipeline stats --all``: one line per WhatsApp number, then the totals.

With the log on PostgreSQL every number is its own log in the same database;
each is folded on its own (as ``stats`` would) and summed up here. A store's
SQLite log holds one number, so it gives one line.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from events.backends import is_postgres, open_reader
from events.jid import user_part
from events.protocol import LogReader
from pipeline.config import counted
from pipeline.tools._stats import Report, entity_names, report
from pipeline.tools._where import Where, as_where, numbers, open_tool_reader
from projections import configs
from projections.fold import States
from projections.runner import Runner


class Totals(msgspec.Struct, frozen=True, kw_only=True):
    numbers: int
    events: int
    replies_sent: int
    spend_today_usd: float
    spend_total_usd: float
    log_bytes: int  # the database's (or file's) size: shared by every number in it


class AllReport(msgspec.Struct, frozen=True, kw_only=True):
    numbers: dict[str, Report]
    totals: Totals


def collect(place: Path | Where, now: float) -> AllReport:
    """Every number's report (``--number`` keeps one)."""
    where = as_where(place)
    reports: dict[str, Report] = {}
    size = 0
    if is_postgres(where.url):
        for number in numbers(where):
            with open_reader(where.store, url=where.url, name=number) as log:
                reports[number], size, _ = _one(log, now)
    else:
        with open_tool_reader(where) as log:
            one, size, states = _one(log, now)
        reports[where.number or _owner(states)] = one
    values = list(reports.values())
    return AllReport(
        numbers=reports,
        totals=Totals(
            numbers=len(values),
            events=sum(sum(r.events.values()) for r in values),
            replies_sent=sum(r.replies_sent for r in values),
            spend_today_usd=round(sum(r.spend_usd.today_utc for r in values), 6),
            spend_total_usd=round(sum(r.spend_usd.total for r in values), 6),
            log_bytes=size,
        ),
    )


def _one(log: LogReader, now: float) -> tuple[Report, int, States]:
    states = Runner.start(log).states
    result = report(states, now, log, entity_names(states))
    return result, result.log.bytes, states


def _owner(states: States) -> str:
    """The number a store's log belongs to, as its last config says."""
    loaded = configs.current(states.configs)
    whatsapp = loaded.config.get("whatsapp") if loaded is not None else None
    phone = whatsapp.get("phone_number") if isinstance(whatsapp, dict) else None
    return user_part(str(phone)) if phone else "store"


def all_text(result: AllReport) -> str:
    header = (
        "number",
        "chats",
        "events",
        "replies",
        "failures",
        "today",
        "all time",
        "newest",
        "connection",
    )
    rows = [header]
    for number, r in result.numbers.items():
        rows.append(
            (
                number,
                str(len(r.chats)),
                str(sum(r.events.values())),
                str(r.replies_sent),
                f"{r.llm_failures}+{r.reply_failures}",
                f"${r.spend_usd.today_utc:.4f}",
                f"${r.spend_usd.total:.4f}",
                r.log.newest_at or "none",
                r.transport.state or "never reported",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    t = result.totals
    lines.append(
        f"Total: {counted(t.numbers, 'number')}, {counted(t.events, 'event')},"
        f" {t.replies_sent} replies sent, "
        f"spend today ${t.spend_today_usd:.4f}, all time ${t.spend_total_usd:.4f}; "
        f"log {t.log_bytes / 1024:.1f} KiB"
    )
    return "\n".join(lines)


def run_stats_all(place: Path | Where, *, as_json: bool, now: float) -> int:
    result = collect(place, now)
    print(msgspec.json.encode(result).decode() if as_json else all_text(result))
    return 0
