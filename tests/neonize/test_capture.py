"""``run --capture-inbound DIR`` (issue 18.13, docs/cli.md): each raw event
of a monitored chat, as neonize handed it over, in a private file of its own;
nothing of a chat the bot does not watch."""

from __future__ import annotations

import tests.neonize_quiet  # noqa: F401  (first: see there)

# isort: split
import stat
from pathlib import Path

import pytest
import structlog
from neonize.proto.Neonize_pb2 import Message as MessageEv
from neonize.proto.Neonize_pb2 import UndecryptableMessage
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message

from pipeline.transport.neonize._capture import Capture, capture_name
from tests.neonize_fakes import dispatch, message_ev
from tests.neonize_wired import wired

pytestmark = pytest.mark.anyio


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    path.mkdir()
    return path


async def test_a_monitored_chats_event_is_captured_as_it_came(tmp_path: Path, store: Path) -> None:
    capture = tmp_path / "capture"
    mine = message_ev(Message(conversation="capture me"), msg_id="3EB0A1")
    theirs = message_ev(
        Message(conversation="not mine"), chat="491709999999@s.whatsapp.net", msg_id="3EB0X1"
    )
    async with wired(store, capture=capture) as w:
        await dispatch(w.client, theirs)
        await dispatch(w.client, mine)
        [arrived] = [r.ts for r in w.log.read() if r.key == "491701111111@s.whatsapp.net/3EB0A1"]

    [file] = capture.iterdir()
    assert file.name.endswith("-3EB0A1.pb")
    assert abs(int(file.name.split("-")[0]) / 1000 - arrived) < 5  # when it arrived
    assert MessageEv.FromString(file.read_bytes()) == mine
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert stat.S_IMODE(capture.stat().st_mode) == 0o700


async def test_without_the_option_nothing_is_captured(tmp_path: Path, store: Path) -> None:
    async with wired(store) as w:
        await dispatch(w.client, message_ev(Message(conversation="hi")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


async def test_a_capture_that_cannot_be_written_costs_nothing_but_a_log_line(
    tmp_path: Path, store: Path
) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    with structlog.testing.capture_logs() as logs:
        async with wired(store, capture=blocked) as w:
            await dispatch(w.client, message_ev(Message(conversation="secret words")))
            assert w.received() == ["3EB0AA"]

    [warning] = [e for e in logs if e["event"] == "inbound_not_captured"]
    assert warning["directory"] == str(blocked)
    assert "secret words" not in repr(logs)


def test_an_undecryptable_event_is_named_so_it_can_be_told_apart(tmp_path: Path) -> None:
    event = message_ev(Message(conversation="x"), msg_id="3EB0/../U1")
    undecryptable = UndecryptableMessage(
        Info=event.Info, IsUnavailable=True, DecryptFailMode=UndecryptableMessage.DECRYPT_FAIL_SHOW
    )

    assert capture_name(event, 1_764_070_000.1234) == "1764070000123-3EB0____U1.pb"
    assert capture_name(undecryptable, 1.0) == "1000-3EB0____U1.undecryptable.pb"
    Capture(tmp_path / "c").write(undecryptable, 1.0)
    saved = (tmp_path / "c" / "1000-3EB0____U1.undecryptable.pb").read_bytes()
    assert UndecryptableMessage.FromString(saved) == undecryptable
