"""The alerter, in-process on a real log with an injected clock: what a webhook that
fails in any way leaves of an alert (the owner's note, the record), a webhook that is
back later, one that moved."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
    def __init__(self, path: Path, webhook: str = HOOK) -> None:
        self.clock = FakeClock(NOW)
        config = config_from_dict(
            {
                "whatsapp": {"phone_number": "491700000000"},
                "monitored_entities": [{"type": "user", "jid": ALICE}, {"type": "self"}],
                "alerts": {"webhook": webhook},
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


class Hook:
    """A webhook on 127.0.0.1: answers each POST with the next of ``answers`` (then 200),
    a redirect as ``(status, location)``; records each POST's path and JSON body."""

    def __init__(self, answers: list[int | tuple[int, str]]) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.answers = answers
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                hook.posts.append((self.path, body))
                answer = hook.answers.pop(0) if hook.answers else 200
                status, location = answer if isinstance(answer, tuple) else (answer, "")
                self.send_response(status)
                if location:
                    self.send_header("location", location)
                self.send_header("content-length", "0")
                self.end_headers()

            def do_GET(self) -> None:  # what httpx's own redirects would send: no alert
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        serving = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        serving.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[[list[int | tuple[int, str]]], Hook]]:
    hooks: list[Hook] = []

    def make(answers: list[int | tuple[int, str]]) -> Hook:
        hooks.append(Hook(answers))
        return hooks[-1]

    yield make
    for hook in hooks:
        hook.close()


@pytest.mark.anyio
async def test_a_webhook_down_for_a_while_gets_the_alert_when_it_is_back(
    tmp_path: Path, serve: Callable[[list[int | tuple[int, str]]], Hook]
) -> None:
    """Three 503s in 5 s settled it for good: a logout reaches the owner only here."""
    hook = serve([503] * 6)
    rig = Rig(tmp_path, hook.url)
    try:
        rig.add(TransportStatus(state="logged_out", detail="logged out from phone"))
        assert await rig.alerter.send_due() == NOW + 60  # the retry falls due by the clock
        assert await rig.alerter.send_due() == NOW + 60  # nothing before then
        rig.clock.now = NOW + 60
        assert await rig.alerter.send_due() == NOW + 60 + 5 * 60
        rig.clock.now = NOW + 3600
        await rig.alerter.send_due()
        await rig.alerter.send_due()
        alerted = rig.found(OwnerAlerted)
    finally:
        rig.folded.close()

    assert [(a.ok, a.error) for a in alerted] == [
        (False, "HTTP 503"),
        (False, "HTTP 503"),
        (True, ""),
    ]
    assert {a.detail for a in alerted} == {"logged out from phone"}
    assert len(hook.posts) == 7
    assert {body["kind"] for _, body in hook.posts} == {"logged_out"}


@pytest.mark.anyio
async def test_a_retry_does_not_tell_the_owner_s_chat_twice(
    tmp_path: Path, serve: Callable[[list[int | tuple[int, str]]], Hook]
) -> None:
    hook = serve([500] * 3)
    rig = Rig(tmp_path, hook.url)
    try:
        rig.add(MessageSkipped(chat=ALICE, msg_id="M1", reason="budget"))
        await rig.alerter.send_due()
        rig.clock.now = NOW + 60
        assert await rig.alerter.send_due() == float("inf")
        notes = [p for p in rig.found(ReplyPlanned) if p.purpose == "alert"]
        alerted = rig.found(OwnerAlerted)
    finally:
        rig.folded.close()

    assert len(notes) == 1
    assert [(a.kind, a.ok) for a in alerted] == [("budget", False), ("budget", True)]


@pytest.mark.anyio
@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_a_webhook_that_moved_gets_the_same_post_where_it_points(
    tmp_path: Path, serve: Callable[[list[int | tuple[int, str]]], Hook], status: int
) -> None:
    """Not followed, it was "HTTP 301" (http to https); followed as httpx does, a GET."""
    hook = serve([(status, "/moved"), (status, "/moved/again")])
    alerted = await _banned_alert(tmp_path, hook.url)

    assert (alerted.ok, alerted.error) == (True, "")
    assert [path for path, _ in hook.posts] == ["/hook", "/moved", "/moved/again"]
    assert {body["kind"] for _, body in hook.posts} == {"banned"}


@pytest.mark.anyio
async def test_a_redirect_loop_is_a_failed_delivery(
    tmp_path: Path, serve: Callable[[list[int | tuple[int, str]]], Hook]
) -> None:
    hook = serve([(308, "/hook")] * 100)
    alerted = await _banned_alert(tmp_path, hook.url)

    assert (alerted.ok, alerted.error) == (False, "HTTP 308 (more than 3 redirects)")
    assert len(hook.posts) == 3 * 4


async def _banned_alert(tmp_path: Path, webhook: str) -> OwnerAlerted:
    """The one alert a ban gives, sent to ``webhook``."""
    rig = Rig(tmp_path, webhook)
    try:
        rig.add(TransportStatus(state="banned", detail="expires in 3600 s"))
        await rig.alerter.send_due()
        [alerted] = rig.found(OwnerAlerted)
        assert isinstance(alerted, OwnerAlerted)
    finally:
        rig.folded.close()
    return alerted
