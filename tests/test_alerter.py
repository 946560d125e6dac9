"""The alerter, in-process on a real log with an injected clock and a stubbed POST: what
a webhook that fails in any way leaves of an alert (the owner's note, the record)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from events.backends import open_log
from events.model import AnyEvent, MessageSkipped, OwnerAlerted, ReplyPlanned, TransportStatus
from events.testing import FakeClock
from pipeline.config import LoadedConfig, Secrets, config_from_dict
from pipeline.daemon import FoldedLog, Settings
from pipeline.daemon._alerter import Alerter
from pipeline.daemon._replies import Ids

NOW = 1_764_070_000.0
ALICE = "491701111111@s.whatsapp.net"
HOOK = "http://127.0.0.1:8080/hooks/tk-5e1c7d9a"


class Rig:
    def __init__(self, path: Path) -> None:
        self.clock = FakeClock(NOW)
        config = config_from_dict(
            {
                "whatsapp": {"phone_number": "491700000000"},
                "monitored_entities": [{"type": "user", "jid": ALICE}, {"type": "self"}],
                "alerts": {"webhook": HOOK},
            }
        )
        loaded = LoadedConfig(
            config=config, hash="h", path="app.json", secrets=Secrets(api_key=None)
        )
        self.folded = FoldedLog(open_log(path / "store", clock=self.clock))
        self.slept: list[float] = []

        async def sleep(seconds: float) -> None:
            self.slept.append(seconds)

        ids = Ids(lambda: uuid.uuid4().hex, lambda: None)
        self.alerter = Alerter(self.folded, Settings(loaded), ids, clock=self.clock, sleep=sleep)

    def add(self, event: AnyEvent) -> None:
        self.folded.fold(self.folded.log.append(event))

    def found(self, kind: type[AnyEvent]) -> list[Any]:
        return [r.event for r in self.folded.log.read() if isinstance(r.event, kind)]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    made = Rig(tmp_path)
    yield made
    made.folded.close()


def stub_post(monkeypatch: pytest.MonkeyPatch, answer: Callable[[], httpx.Response]) -> list[str]:
    """Every webhook POST answers ``answer()`` (or raises what it raises); returns the URLs."""
    posted: list[str] = []

    async def post(self: httpx.AsyncClient, url: str, **kw: Any) -> httpx.Response:
        posted.append(url)
        return answer()

    monkeypatch.setattr(httpx.AsyncClient, "post", post)
    return posted


def group_error() -> httpx.Response:
    # What a port the socket cannot take gave: not an httpx.HTTPError, and in a group.
    cause = OverflowError("port must be\n0-65535.")
    raise ExceptionGroup("unhandled errors in a TaskGroup", [cause])


def invalid_url() -> httpx.Response:
    raise httpx.InvalidURL("Invalid port: '8O80'")


@pytest.mark.anyio
@pytest.mark.parametrize("answer", [group_error, invalid_url])
async def test_a_webhook_failing_in_any_way_costs_neither_the_note_nor_the_record(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, answer: Callable[[], httpx.Response]
) -> None:
    """The pass used to fail at every poll, and the owner's chat never heard of the budget."""
    posted = stub_post(monkeypatch, answer)
    rig.add(MessageSkipped(chat=ALICE, msg_id="M1", reason="budget"))
    await rig.alerter.send_due()
    await rig.alerter.send_due()  # settled: neither a second note nor a second record

    notes = [p for p in rig.found(ReplyPlanned) if p.purpose == "alert"]
    assert len(notes) == 1
    assert "daily LLM budget is spent" in notes[0].text
    [alerted] = rig.found(OwnerAlerted)
    assert (alerted.kind, alerted.ok) == ("budget", False)
    assert "\n" not in alerted.error
    assert alerted.error.split(":")[0] in {"OverflowError", "InvalidURL"}
    assert len(posted) == 3  # its three tries


@pytest.mark.anyio
async def test_a_webhook_only_alert_is_recorded_when_the_post_raises(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub_post(monkeypatch, group_error)
    rig.add(TransportStatus(state="logged_out", detail="logged out from phone"))
    await rig.alerter.send_due()

    [alerted] = rig.found(OwnerAlerted)
    assert (alerted.kind, alerted.ok) == ("logged_out", False)
    assert alerted.error == "OverflowError: port must be 0-65535."
    assert not [p for p in rig.found(ReplyPlanned) if p.purpose == "alert"]
