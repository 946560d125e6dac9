"""``python -m pipeline stats`` on a conversation the real daemon recorded."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from events.backends import open_log
from events.model import AccountRestricted, TransportStatus
from events.testing import FakeClock
from pipeline.tools._args import iso
from tests.conversation import Recording, log_position, record
from tests.e2e.harness import ALICE, GROUP, OWNER_JID, daemon_env, run_cli
from tests.llm_server import FakeLlmServer

pytestmark = pytest.mark.slow


class _Chat(msgspec.Struct, forbid_unknown_fields=True):
    chat: str
    name: str | None
    events: int


class _KindSpend(msgspec.Struct, forbid_unknown_fields=True):
    today_utc: float
    last_7_days: float
    total: float


class _Spend(_KindSpend, forbid_unknown_fields=True):
    by_kind: dict[str, _KindSpend]


class _Latency(msgspec.Struct, forbid_unknown_fields=True):
    p50: float | None
    p95: float | None
    samples: int


class _Log(msgspec.Struct, forbid_unknown_fields=True):
    bytes: int
    last_seq: int
    oldest_seq: int | None
    oldest_at: str | None
    newest_at: str | None
    compacted: int


class _Transport(msgspec.Struct, forbid_unknown_fields=True):
    state: str | None
    detail: str


class _Account(msgspec.Struct, forbid_unknown_fields=True):
    restricted: bool
    since: str | None
    code: int | None
    until: str | None
    held_until: str | None
    detail: str


class _Stats(msgspec.Struct, forbid_unknown_fields=True):
    chats: list[_Chat]
    events: dict[str, int]
    replies_sent: int
    undecryptable: int
    receipts: dict[str, int]
    llm_failures: int
    reply_failures: int
    spend_usd: _Spend
    latency_ms: _Latency
    log: _Log
    transport: _Transport
    unresolved_lids: dict[str, int]
    account: _Account


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recording]:
    with FakeLlmServer() as server:
        yield record(tmp_path_factory.mktemp("stats") / "recorded", server)


def _stats(store: Path, *args: str):
    return run_cli(["stats", "--store", str(store), *args], cwd=store.parent, env=daemon_env())


def test_json_counts_spend_latency_and_log(recording: Recording):
    position = log_position(recording.store)

    done = _stats(recording.store, "--json")

    assert done.returncode == 0, done.stderr
    stats = msgspec.json.decode(done.stdout, type=_Stats)
    names = {c.chat: c.name for c in stats.chats}
    assert names == {ALICE: "Alice", GROUP: "Family", OWNER_JID: "Me"}
    # Besides the chats': the configs and three connection states (the daemon's
    # "connecting" at start, the transport's "connected", the clean stop's "stopped").
    assert sum(c.events for c in stats.chats) + stats.events["ConfigLoaded"] + 3 == position[0]
    assert stats.events["LlmRequested"] == 4
    assert stats.events["MessageSkipped"] == 2
    assert stats.replies_sent == 6  # startup, four answers, the reset notice
    # stdio sent no receipt lines: every message reached WhatsApp's server, no more.
    assert stats.receipts == {"server": 6, "delivered": 0, "read": 0, "played": 0}
    assert stats.undecryptable == 0
    assert (stats.llm_failures, stats.reply_failures) == (0, 0)
    assert stats.spend_usd.today_utc == pytest.approx(4 * 0.0061)
    assert stats.spend_usd.last_7_days == stats.spend_usd.total == stats.spend_usd.today_utc
    assert stats.spend_usd.by_kind == {
        "llm": _KindSpend(today_utc=0.0244, last_7_days=0.0244, total=0.0244),
        "transcription": _KindSpend(today_utc=0.0, last_7_days=0.0, total=0.0),
        "speech": _KindSpend(today_utc=0.0, last_7_days=0.0, total=0.0),
    }
    assert stats.latency_ms.samples == 4
    assert stats.latency_ms.p50 is not None
    assert stats.latency_ms.p95 is not None
    assert stats.latency_ms.p50 <= stats.latency_ms.p95
    db = recording.store / "events.db"
    wal = db.with_name("events.db-wal")
    assert stats.log.bytes == db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    assert (stats.log.oldest_seq, stats.log.last_seq) == (1, position[1])
    assert stats.transport.state == "stopped"  # the recording daemon was stopped
    assert stats.unresolved_lids == {}
    assert stats.account == _Account(
        restricted=False, since=None, code=None, until=None, held_until=None, detail=""
    )
    assert log_position(recording.store) == position


def test_text_names_the_utc_days_and_the_connection(recording: Recording):
    done = _stats(recording.store)

    assert done.returncode == 0, done.stderr
    assert f"  Alice ({ALICE})" in done.stdout
    assert "Spend (UTC days): today $0.0244, last 7 days $0.0244" in done.stdout
    assert "Replies sent: 6" in done.stdout
    assert "Sent messages by receipt: 6 sent only, 0 delivered, 0 read, 0 played" in done.stdout
    assert "Unreadable messages (recorded, never answered): 0" in done.stdout
    assert "Connection: stopped (daemon stopped)" in done.stdout
    assert "Account: not restricted" in done.stdout


def test_a_restricted_account_is_shown_with_what_whatsapp_said(tmp_path: Path):
    """Refused an hour ago with no end given, and again half an hour ago: held for
    another half hour (the daemon's rule; ``stats`` reads the real clock)."""
    store = tmp_path / "store"
    start = float(int(time.time()) - 3600)
    clock = FakeClock(start)
    with open_log(store, clock=clock) as log:
        log.append(TransportStatus(state="connected"))
        log.append(AccountRestricted(code=463, detail="refused"))
        clock.advance(1800)
        log.append(AccountRestricted(code=463, detail="refused again"))

    text, as_json = _stats(store), _stats(store, "--json")

    assert as_json.returncode == 0, as_json.stderr
    account = msgspec.json.decode(as_json.stdout, type=_Stats).account
    assert account == _Account(
        restricted=True,
        since=iso(start),
        code=463,
        until=None,
        held_until=iso(start + 1800 + 3600),
        detail="refused again",
    )
    assert (
        f"Account: restricted by WhatsApp since {iso(start)} (error 463, no end given); "
        f"replies to others held until {iso(start + 5400)}: refused again"
    ) in text.stdout
