"""``/metrics``: the log's counts in the Prometheus text format (prometheus-client).

Every value is derived from the log at scrape time, so the standalone console
and the one inside ``run`` report the same. Counters count what the log still
holds: a compaction lowers them, which Prometheus treats as a counter reset.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import get_args

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from events.model import TransportState
from events.units import DAY
from pipeline.tools.web._console import Snapshot
from pipeline.tools.web._health import oldest_undecided
from pipeline.tools.web._overview import queue_depth
from pipeline.tools.web._summary import LATENCY_BUCKETS
from projections import account, budget, outbox
from projections.spend import KINDS

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TRANSPORT_STATES: tuple[str, ...] = get_args(TransportState)


def metrics_text(snap: Snapshot, log_bytes: int) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(list(_families(snap, log_bytes))))
    return generate_latest(registry)


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def _counter(name: str, doc: str, label: str, table: dict[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label])
    for key, value in sorted(table.items()):
        family.add_metric([key], value)
    return family


def _families(snap: Snapshot, log_bytes: int) -> Iterable[Metric]:
    s, states = snap.summary, snap.states
    health = snap.health()
    yield GaugeMetricFamily("wabot_up", "1 when /healthz is 200", value=int(health.ok))
    for check in health.checks:
        yield GaugeMetricFamily(
            f"wabot_{check.name}_ok", f"1 when the {check.name} check passes", value=int(check.ok)
        )
    state = states.connection.state
    connection = GaugeMetricFamily(
        "wabot_transport_state", "1 for the last connection state logged", labels=["state"]
    )
    for name in TRANSPORT_STATES:
        connection.add_metric([name], int(name == state))
    yield connection
    yield CounterMetricFamily(
        "wabot_messages_received",
        "Inbound messages recorded (monitored chats only)",
        value=sum(c.messages_in for c in s.chats.values()),
    )
    yield _counter(
        "wabot_messages",
        "Inbound messages by decision (llm, reply, command, undecryptable, or why skipped)",
        "decision",
        s.decisions,
    )
    yield GaugeMetricFamily(
        "wabot_queue_depth", "Messages awaiting a decision", value=queue_depth(snap)
    )
    oldest = oldest_undecided(states)
    yield GaugeMetricFamily(
        "wabot_queue_oldest_seconds",
        "How long the oldest undecided message has waited",
        value=0 if oldest is None else max(snap.now - oldest, 0),
    )
    yield GaugeMetricFamily(
        "wabot_account_restricted",
        "1 while WhatsApp restricts the account from messaging others (error 463/479)",
        value=int(account.newest(states.account) is not None),
    )
    yield GaugeMetricFamily(
        "wabot_sends_last_minute",
        "Messages sent in the last 60 s (whatsapp.max_sends_per_minute bounds it)",
        value=sum(1 for t in account.send_times(states.account) if t > snap.now - 60),
    )
    yield GaugeMetricFamily(
        "wabot_replies_unsent",
        "Replies planned, not yet sent",
        value=len(outbox.unsent(states.outbox)),
    )
    yield _counter("wabot_sent", "Messages sent by purpose", "purpose", s.sent)
    yield _counter("wabot_llm_calls", "LLM call outcomes", "outcome", s.llm_outcomes)
    yield _counter("wabot_failures", "Final failures by reason", "reason", s.failures)
    yield _latency(snap)
    yield from _spend(snap)
    yield _counter("wabot_llm_tokens", "LLM tokens by direction", "direction", s.tokens)
    yield GaugeMetricFamily("wabot_log_last_seq", "The newest log position", value=states.seq)
    yield GaugeMetricFamily("wabot_log_bytes", "The log's size on disk", value=log_bytes)


def _spend(snap: Snapshot) -> Iterable[Metric]:
    """Spend by kind (projections.spend: the budget's, ``stats``'s and the dashboard's)."""
    total = CounterMetricFamily(
        "wabot_spend_usd", "Spend recorded in the log, by kind", labels=["kind"]
    )
    day = GaugeMetricFamily(
        "wabot_spend_last_24h_usd", "Spend of the last 24 hours, by kind", labels=["kind"]
    )
    since = snap.now - DAY
    for kind in KINDS:
        total.add_metric([kind], snap.summary.spend_usd.get(kind, 0.0))
        day.add_metric([kind], budget.spent_since(snap.states.budget, since, kind))
    yield total
    yield day
    # The names of the first version, kept for dashboards built on them: the LLM's part.
    yield CounterMetricFamily(
        "wabot_llm_spend_usd",
        'LLM spend recorded in the log (wabot_spend_usd_total{kind="llm"})',
        value=snap.summary.spend_usd.get("llm", 0.0),
    )
    yield GaugeMetricFamily(
        "wabot_llm_spend_last_24h_usd",
        'LLM spend of the last 24 hours (wabot_spend_last_24h_usd{kind="llm"})',
        value=budget.spent_since(snap.states.budget, since, "llm"),
    )


def _latency(snap: Snapshot) -> HistogramMetricFamily:
    s = snap.summary
    buckets: list[tuple[str, float]] = []
    running = 0
    for bound, count in zip(LATENCY_BUCKETS, s.latency_buckets, strict=True):
        running += count
        buckets.append((f"{bound:g}", running))
    buckets.append(("+Inf", s.latency_count))
    return HistogramMetricFamily(
        "wabot_llm_latency_seconds",
        "LLM call latency (completed calls)",
        buckets=buckets,
        sum_value=s.latency_sum_s,
    )
