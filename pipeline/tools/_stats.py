"""``python -m pipeline stats``: counts, spend, latency and health from the projections.

Days are UTC days ("today" began at 00:00 UTC). Spend comes from the budget
projection, which keeps eight days of costs: enough for the 7-day window.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from events.protocol import LogReader
from events.units import DAY
from pipeline.config import ConfigError, config_from_dict
from pipeline.tools._args import iso
from pipeline.tools._where import Where, open_tool_reader
from projections import account, budget, configs, connection, deliveries, stats
from projections.fold import States
from projections.runner import Runner
from projections.spend import KINDS, SPEND_NAMES, SpendKind


class ChatCount(msgspec.Struct, frozen=True, kw_only=True):
    chat: str
    name: str | None
    events: int


class KindSpend(msgspec.Struct, frozen=True, kw_only=True):
    today_utc: float
    last_7_days: float
    total: float


class Spend(KindSpend, frozen=True, kw_only=True):
    """Every kind of spend together (``projections.spend``), and each kind alone."""

    by_kind: dict[str, KindSpend]


class Latency(msgspec.Struct, frozen=True, kw_only=True):
    p50: float | None
    p95: float | None
    samples: int


class LogInfo(msgspec.Struct, frozen=True, kw_only=True):
    bytes: int
    last_seq: int
    oldest_seq: int | None
    oldest_at: str | None
    newest_at: str | None
    compacted: int  # events removed by compaction


class Transport(msgspec.Struct, frozen=True, kw_only=True):
    state: str | None
    detail: str


class Account(msgspec.Struct, frozen=True, kw_only=True):
    """Whether WhatsApp restricts the account from messaging others (error 463/479)."""

    restricted: bool
    since: str | None = None
    code: int | None = None
    until: str | None = None  # when WhatsApp said it ends
    held_until: str | None = None  # replies to others wait until then; null: not held now
    detail: str = ""


class Report(msgspec.Struct, frozen=True, kw_only=True):
    chats: list[ChatCount]
    events: dict[str, int]
    replies_sent: int
    # Messages recorded that nothing could be read of (never answered).
    undecryptable: int
    # Sent messages still in the log by the furthest state WhatsApp reported for them.
    receipts: dict[str, int]
    llm_failures: int
    reply_failures: int
    spend_usd: Spend
    latency_ms: Latency
    log: LogInfo
    transport: Transport
    # LIDs that wrote without a phone number nothing tied to a chat: messages each
    unresolved_lids: dict[str, int] = {}
    account: Account


def report(states: States, now: float, log: LogReader, names: Mapping[str, str]) -> Report:
    """Everything ``stats`` shows, from the folded states at ``now`` and the ``log`` they fold."""
    oldest = next(iter(log.read(limit=1)), None)
    s = states.stats
    midnight = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    chats = sorted(s.by_chat.items(), key=lambda kv: (-kv[1], kv[0]))
    return Report(
        chats=[ChatCount(chat=c, name=names.get(c), events=n) for c, n in chats],
        events={k: v for k, v in sorted(s.by_type.items()) if v},
        replies_sent=s.replies_sent,
        undecryptable=s.by_type.get("MessageUndecryptable", 0),
        receipts=_receipts(states.deliveries),
        llm_failures=s.llm_failures,
        reply_failures=s.reply_failures,
        spend_usd=_spend(states, midnight.timestamp(), now - 7 * DAY),
        latency_ms=Latency(
            p50=stats.percentile(s, 50), p95=stats.percentile(s, 95), samples=len(s.latencies)
        ),
        log=LogInfo(
            bytes=log.size_bytes(),
            last_seq=states.seq,
            oldest_seq=oldest.seq if oldest else None,
            oldest_at=iso(oldest.ts) if oldest else None,
            newest_at=iso(s.newest_ts) if oldest else None,
            compacted=s.compacted,
        ),
        transport=Transport(state=states.connection.state, detail=states.connection.detail),
        unresolved_lids=dict(sorted(s.unresolved_lids.items())),
        account=account_report(states, now),
    )


def account_report(states: States, now: float) -> Account:
    strike = account.newest(states.account)
    if strike is None:
        return Account(restricted=False)
    held = account.hold_until(states.account, connection.connected_at(states.connection), now)
    return Account(
        restricted=True,
        since=_iso(account.since(states.account)),
        code=strike.code,
        until=_iso(strike.until),
        held_until=_iso(held),
        detail=strike.detail,
    )


def account_text(a: Account) -> str:
    """The account's state in one line (stats, the console)."""
    if not a.restricted:
        return "not restricted"
    code = f"error {a.code}" if a.code is not None else "restricted"
    end = f"until {a.until}" if a.until else "no end given"
    if a.held_until:
        now = f"replies to others held until {a.held_until}"
    else:
        now = "one reply to others at a time until one goes through"
    detail = f": {a.detail}" if a.detail else ""
    return f"restricted by WhatsApp since {a.since} ({code}, {end}); {now}{detail}"


def _spend(states: States, today: float, week: float) -> Spend:
    def of(kind: SpendKind | None) -> KindSpend:
        total = states.stats.spend_usd.get(kind, 0.0) if kind else stats.spent(states.stats)
        return KindSpend(
            today_utc=round(budget.spent_since(states.budget, today, kind), 6),
            last_7_days=round(budget.spent_since(states.budget, week, kind), 6),
            total=round(total, 6),
        )

    every = of(None)
    return Spend(
        today_utc=every.today_utc,
        last_7_days=every.last_7_days,
        total=every.total,
        by_kind={kind: of(kind) for kind in KINDS},
    )


def entity_names(states: States) -> dict[str, str]:
    """Chat JID -> entity name, from the config in force (none if it will not parse)."""
    loaded = configs.current(states.configs)
    if loaded is None:
        return {}
    try:
        config = config_from_dict(loaded.config)
    except ConfigError:
        return {}
    return {config.entity_jid(e): e.name for e in config.monitored_entities if e.name}


def report_text(r: Report) -> str:
    width = max((len(_chat_label(c)) for c in r.chats), default=0)
    lines = ["Chats (events):"]
    lines += [f"  {_chat_label(c):<{width}}  {c.events}" for c in r.chats] or ["  none"]
    lines.append("Events by type:")
    width = max(map(len, r.events), default=0)
    lines += [f"  {name:<{width}} {n}" for name, n in r.events.items()] or ["  none"]
    p50, p95 = r.latency_ms.p50, r.latency_ms.p95
    log = r.log
    oldest = f"seq {log.oldest_seq} at {log.oldest_at}" if log.oldest_seq else "none"
    state = r.transport.state or "never reported"
    detail = f" ({r.transport.detail})" if r.transport.detail else ""
    lines += [
        f"Replies sent: {r.replies_sent}",
        "Sent messages by receipt: "
        + ", ".join(f"{n} {_REACHED[state]}" for state, n in r.receipts.items()),
        f"Unreadable messages (recorded, never answered): {r.undecryptable}",
        f"Failures: {r.llm_failures} LLM (final), {r.reply_failures} sending (final)",
        f"Spend (UTC days): {_usd(r.spend_usd)}",
        *(f"  {SPEND_NAMES[k]}: {_usd(v)}" for k, v in r.spend_usd.by_kind.items()),
        f"LLM latency: p50 {_ms(p50)}, p95 {_ms(p95)} (last {r.latency_ms.samples} calls)",
        f"Log: {log.bytes / 1024:.1f} KiB, last seq {log.last_seq}, oldest event {oldest}, "
        f"newest {log.newest_at or 'none'}, {log.compacted} compacted away",
        f"Connection: {state}{detail}",
        f"Account: {account_text(r.account)}",
    ]
    if r.unresolved_lids:
        lines.append("Unknown LIDs (messages not filed; add one as a user entity by its jid):")
        lines += [f"  {lid}  {n}" for lid, n in r.unresolved_lids.items()]
    return "\n".join(lines)


def run_stats(store: Path | Where, *, as_json: bool, now: float) -> int:
    with open_tool_reader(store) as log:
        states = Runner.start(log).states
        result = report(states, now, log, entity_names(states))
    if as_json:
        print(msgspec.json.encode(result).decode())
    else:
        print(report_text(result))
    return 0


_REACHED = {
    "server": "sent only",
    "delivered": "delivered",
    "read": "read",
    "played": "played",
}


def _receipts(state: deliveries.State) -> dict[str, int]:
    counts: dict[str, int] = dict.fromkeys(deliveries.ORDER, 0)
    for wa_id in state.sent:
        counts[deliveries.furthest(state, wa_id)] += 1
    return counts


def _chat_label(c: ChatCount) -> str:
    return f"{c.name} ({c.chat})" if c.name else c.chat


def _iso(ts: float | None) -> str | None:
    return None if ts is None else iso(ts)


def _usd(s: KindSpend) -> str:
    return f"today ${s.today_utc:.4f}, last 7 days ${s.last_7_days:.4f}, all time ${s.total:.4f}"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"
