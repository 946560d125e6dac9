"""Stats counters and the configuration in force."""

from pathlib import Path

from events.backends import open_log
from events.model import (
    AnyEvent,
    Compacted,
    ConfigLoaded,
    LlmCompleted,
    LlmFailed,
    MessageReceived,
    MessageSkipped,
    Recorded,
    ReplyFailed,
    ReplySent,
    TransportStatus,
    Usage,
)
from events.testing import FakeClock
from events.units import DAY
from projections import configs, retention, stats
from projections.fold import States, fold
from projections.runner import Runner

CHAT = "491701111111@s.whatsapp.net"


def folded(*events: AnyEvent, first_seq: int = 1) -> States:
    return fold([Recorded(i, 1000.0 + i, e) for i, e in enumerate(events, first_seq)])


def completed(latency: float, usd: float | None = None) -> LlmCompleted:
    return LlmCompleted(
        chat=CHAT, call_id="c", content="x", latency_ms=latency, usage=Usage(cost_usd=usd)
    )


def test_counts_costs_failures_and_transport():
    states = folded(
        MessageReceived(chat=CHAT, msg_id="m", sender=CHAT),
        completed(100, 0.5),
        completed(300, None),
        LlmFailed(chat=CHAT, call_id="c", error="x", final=False),
        LlmFailed(chat=CHAT, call_id="c", error="x", final=True),
        ReplySent(chat=CHAT, reply_id="r", wa_id="w", sent_at=0),
        ReplyFailed(chat=CHAT, reply_id="r", error="x", final=True),
        TransportStatus(state="qr", detail="scan"),
        TransportStatus(state="connected"),
        Compacted(reason="rotation", before=5, removed=4),
        first_seq=7,
    )
    s = states.stats
    assert s.by_type["LlmCompleted"] == 2
    assert s.by_type["Compacted"] == 1
    assert s.by_chat == {CHAT: 7}
    assert (s.replies_sent, s.llm_failures, s.reply_failures, s.compacted) == (1, 1, 1, 4)
    assert s.spend_usd == {"llm": 0.5}
    assert stats.spent(s) == 0.5
    assert s.by_type["TransportStatus"] == 2
    assert (states.connection.state, states.connection.detail) == ("connected", "")
    assert s.newest_ts == 1016.0


def test_a_failed_call_that_was_billed_counts_as_llm_spend():
    billed = Usage(output_tokens=1024, cost_usd=0.02)
    s = folded(
        completed(100, 0.5),
        LlmFailed(chat=CHAT, call_id="c", error="x", final=False, usage=billed),
        LlmFailed(chat=CHAT, call_id="c", error="x", final=True, usage=billed),
        LlmFailed(chat=CHAT, call_id="d", error="x", final=True),
    ).stats
    assert s.spend_usd == {"llm": 0.54}
    assert s.llm_failures == 2
    assert s.by_type["LlmFailed"] == 3


def test_latency_percentiles_over_the_last_thousand_calls():
    assert stats.percentile(folded().stats, 50) is None
    s = folded(*[completed(float(n)) for n in range(1, 1101)]).stats
    assert len(s.latencies) == 1000
    assert stats.percentile(s, 50) == 600.0
    assert stats.percentile(s, 95) == 1050.0
    assert stats.percentile(s, 0) == 101.0
    assert stats.percentile(s, 100) == 1100.0


def test_latest_config():
    assert configs.current(folded().configs) is None
    state = folded(
        ConfigLoaded(hash="a", config={"x": 1}, path="app.json"),
        ConfigLoaded(hash="b", config={"x": 2}, path="app.json"),
    ).configs
    latest = configs.current(state)
    assert latest is not None
    assert (latest.seq, latest.hash, latest.config) == (2, "b", {"x": 2})


def test_chats_of_which_nothing_is_left_leave_the_counts(tmp_path: Path) -> None:
    """Months of strangers writing by LID, each once: the per-chat counts hold the
    chats the log still has, not every chat ever seen. A chat still there keeps its
    tally (a rotation does not lower it)."""
    clock = FakeClock()
    log = open_log(tmp_path, clock=clock)
    runner = Runner.start(log)
    sizes = {}
    for day in range(1, 121):
        lid = f"{100_000_000_000_000 + day}@lid"
        log.append(
            MessageSkipped(chat=lid, msg_id=f"S{day}", reason="unresolved_lid"),
            MessageReceived(chat=CHAT, msg_id=f"M{day}", sender=CHAT, text="hi"),
        )
        runner.catch_up()
        log.compact("rotation", retention.rotation(runner.states.retention, 30, clock.now))
        runner.catch_up()
        if day in (60, 120):
            s = runner.states.stats
            sizes[day] = (len(s.by_chat), len(s.unresolved_lids))
        clock.advance(DAY)

    assert sizes[120] == sizes[60] == (32, 31)  # the strangers of the retention, and CHAT
    assert runner.states.stats.by_chat[CHAT] == 120  # a tally: rotations do not lower it
    assert fold(log.read()).stats.unresolved_lids == runner.states.stats.unresolved_lids
    log.close()
