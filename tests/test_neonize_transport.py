"""The WhatsApp transport, offline: real neonize objects and protos, a fake Go side.

Events travel neonize's real dispatch path (its Go callback entry points,
called from a thread), so these tests also catch a neonize upgrade that
changes how handlers are called.
"""

from __future__ import annotations

import tests.neonize_quiet  # noqa: F401  (first: see there)

# isort: split
import io
import logging
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import neonize.aioze.events as neonize_events
import pytest
from neonize.proto.Neonize_pb2 import (
    ClientOutdated,
    Connected,
    ConnectFailure,
    ConnectFailureReason,
    Disconnected,
    LoggedOut,
    StreamReplaced,
    TemporaryBan,
)
from neonize.proto.waCommon.WACommon_pb2 import MessageKey
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import (
    ContextInfo,
    ExtendedTextMessage,
    ImageMessage,
    Message,
    ReactionMessage,
    StickerMessage,
)

from events.model import MessageReceived, TransportStatus
from pipeline.transport import Inbound, TransportError
from pipeline.transport.neonize import NeonizeTransport
from pipeline.transport.neonize import _transport as transport_module
from pipeline.transport.neonize._lifecycle import LIFECYCLE
from pipeline.transport.neonize._pairing import prepare_session
from tests.e2e.harness import Daemon, daemon_env, loose_modes, run_cli, write_config
from tests.llm_server import TEST_KEY
from tests.neonize_fakes import (
    ALICE,
    GROUP,
    LID,
    OWNER,
    SENT_AT,
    SENT_ID,
    FakeGo,
    dispatch,
    message_ev,
    show_qr_code,
)

ALICE_JID = f"{ALICE}@s.whatsapp.net"
OWNER_JID = f"{OWNER}@s.whatsapp.net"
WAIT = 10.0  # a bound on waiting for evidence, never a sleep


@pytest.fixture(autouse=True)
def neonize_loop() -> Iterator[None]:
    """neonize keeps the first loop that connects in a module global; each test has its own."""
    neonize_events.event_global_loop = None
    yield
    neonize_events.event_global_loop = None


class Session:
    """One ``run`` of a transport, with what it delivered and reported."""

    def __init__(self, transport: NeonizeTransport, go: FakeGo) -> None:
        self.transport = transport
        self.client: Any = transport._client
        self.go = go
        self.error: TransportError | None = None
        self.ended = anyio.Event()
        self._inbound_in, self._inbound = anyio.create_memory_object_stream[Inbound](100)
        self._status_in, self._status = anyio.create_memory_object_stream[TransportStatus](100)

    async def run(self) -> None:
        try:
            await self.transport.run(self._inbound_in.send, self._status_in.send)
        except TransportError as exc:
            self.error = exc
        finally:
            self.ended.set()

    async def next_message(self) -> MessageReceived:
        with anyio.fail_after(WAIT):
            return (await self._inbound.receive()).event

    async def next_status(self) -> TransportStatus:
        with anyio.fail_after(WAIT):
            return await self._status.receive()

    async def statuses(self, count: int) -> list[tuple[str, str]]:
        return [(s.state, s.detail) for s in [await self.next_status() for _ in range(count)]]

    async def connected(self) -> None:
        await dispatch(self.client, Connected(status=True))
        assert await self.statuses(2) == [("connecting", ""), ("connected", "")]

    def close(self) -> None:
        for stream in (self._inbound_in, self._inbound, self._status_in, self._status):
            stream.close()

    async def end(self) -> TransportError:
        with anyio.fail_after(WAIT):
            await self.ended.wait()
        assert self.error is not None
        return self.error


@pytest.fixture
def make_transport(tmp_path: Path) -> Any:
    def make(**kwargs: Any) -> tuple[NeonizeTransport, FakeGo]:
        kwargs.setdefault("terminal", io.StringIO())
        kwargs.setdefault("backoff", (0.0,))
        transport = NeonizeTransport(
            OWNER, session_db=str(tmp_path / "wa.db"), qr_png=tmp_path / "qr.png", **kwargs
        )
        go = FakeGo()
        transport._client._NewAClient__client = go
        return transport, go

    return make


@asynccontextmanager
async def running(transport: NeonizeTransport, go: FakeGo) -> AsyncIterator[Session]:
    session = Session(transport, go)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(session.run)
            yield session
            tg.cancel_scope.cancel()
    finally:
        await transport.aclose()
        session.close()


async def send_hi(transport: NeonizeTransport) -> None:
    await transport.send(ALICE_JID, "hi", wa_id=None, reply_to=None, purpose="reply")


# -- receiving ------------------------------------------------------------


@pytest.mark.anyio
async def test_a_direct_text_message(make_transport: Any) -> None:
    async with running(*make_transport()) as session:
        await session.connected()
        await dispatch(session.client, message_ev(Message(conversation="hi there")))

        event = await session.next_message()

    assert event.chat == event.sender == ALICE_JID  # the sender's device (:3) is dropped
    assert (event.msg_id, event.text, event.kind) == ("3EB0AA", "hi there", "text")
    assert event.sent_at == pytest.approx(1_764_070_000.123)  # milliseconds -> seconds
    assert (event.push_name, event.sender_alt, event.from_me, event.is_group) == (
        "Alice",
        None,
        False,
        False,
    )


@pytest.mark.anyio
async def test_a_direct_message_by_lid_keeps_the_phone_number_as_sender_alt(
    make_transport: Any,
) -> None:
    ev = message_ev(
        Message(extendedTextMessage=ExtendedTextMessage(text="hallo")),
        chat=f"{LID}@lid",
        sender_alt=ALICE_JID,
    )
    async with running(*make_transport()) as session:
        await session.connected()
        await dispatch(session.client, ev)

        event = await session.next_message()

    assert (event.chat, event.sender) == (f"{LID}@lid", f"{LID}@lid")
    assert event.sender_alt == ALICE_JID
    assert event.text == "hallo"


@pytest.mark.anyio
async def test_a_group_message_with_a_mention_and_a_quote(make_transport: Any) -> None:
    text = ExtendedTextMessage(
        text="@491700000000 what do you think?",
        contextInfo=ContextInfo(
            stanzaID="3EB0QUOTED", participant=ALICE_JID, mentionedJID=[OWNER_JID, "bogus"]
        ),
    )
    ev = message_ev(
        Message(extendedTextMessage=text),
        chat=GROUP,
        sender=f"{LID}:7@lid",
        sender_alt="491702222222:7@s.whatsapp.net",
    )
    async with running(*make_transport()) as session:
        await session.connected()
        await dispatch(session.client, ev)

        event = await session.next_message()

    assert (event.chat, event.is_group) == (GROUP, True)
    assert (event.sender, event.sender_alt) == (f"{LID}@lid", "491702222222@s.whatsapp.net")
    assert event.quoted_id == "3EB0QUOTED"
    assert event.mentions == [OWNER_JID]  # the unreadable one is left out, not the message


@pytest.mark.anyio
async def test_a_message_the_owner_typed_on_the_phone(make_transport: Any) -> None:
    ev = message_ev(Message(conversation="I'll answer this one"), sender=OWNER_JID, from_me=True)
    async with running(*make_transport()) as session:
        await session.connected()
        await dispatch(session.client, ev)

        event = await session.next_message()

    assert (event.chat, event.sender, event.from_me) == (ALICE_JID, OWNER_JID, True)


@pytest.mark.anyio
async def test_media_kinds_captions_and_contentless_messages(make_transport: Any) -> None:
    reaction = ReactionMessage(key=MessageKey(ID="3EB0AA"), text="👍")
    messages = [
        message_ev(Message(reactionMessage=reaction), msg_id="R"),
        message_ev(Message(imageMessage=ImageMessage(caption="our trip")), msg_id="I"),
        message_ev(Message(extendedTextMessage=ExtendedTextMessage()), msg_id="EMPTY"),
        message_ev(Message(stickerMessage=StickerMessage()), msg_id="S"),
    ]
    async with running(*make_transport()) as session:
        await session.connected()
        for ev in messages:
            await dispatch(session.client, ev)

        image = await session.next_message()
        sticker = await session.next_message()

    assert (image.msg_id, image.kind, image.text) == ("I", "image", "our trip")
    assert (sticker.msg_id, sticker.kind, sticker.text) == ("S", "sticker", "")


@pytest.mark.anyio
async def test_nothing_of_a_received_message_is_logged_even_at_debug(
    make_transport: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The transport cannot know if the chat is monitored: only the daemon may log it."""
    caplog.set_level(logging.DEBUG)
    stranger = "491709999999"
    text = ExtendedTextMessage(
        text="zq-private-words", contextInfo=ContextInfo(mentionedJID=["491708888888@lid"])
    )
    reaction = ReactionMessage(key=MessageKey(ID="3EB0AA"), text="zq-reaction")
    chat = f"{stranger}@s.whatsapp.net"
    async with running(*make_transport()) as session:
        await session.connected()
        await dispatch(session.client, message_ev(Message(reactionMessage=reaction), chat=chat))
        ev = message_ev(Message(extendedTextMessage=text), chat=chat, push_name="Zebulon Quint")
        await dispatch(session.client, ev)

        event = await session.next_message()

    assert event.text == "zq-private-words"
    for secret in ("zq-private-words", "zq-reaction", "Zebulon", stranger, "491708888888"):
        assert secret not in caplog.text


@pytest.mark.anyio
async def test_messages_are_delivered_in_arrival_order(make_transport: Any) -> None:
    ids = [f"M{n:02d}" for n in range(30)]
    async with running(*make_transport()) as session:
        await session.connected()
        for msg_id in ids:
            await dispatch(session.client, message_ev(Message(conversation="x"), msg_id=msg_id))

        assert [(await session.next_message()).msg_id for _ in ids] == ids


# -- sending ----------------------------------------------------------------


@pytest.mark.anyio
async def test_sends_a_plain_conversation_so_digits_after_at_stay_text(
    make_transport: Any,
) -> None:
    text = "Ask @491701111111 about it"
    async with running(*make_transport()) as session:
        await session.connected()
        receipt = await session.transport.send(
            GROUP, text, wa_id=None, reply_to=None, purpose="reply"
        )
        await session.transport.send(f"{LID}@lid", "hi", wa_id=None, reply_to="M1", purpose="reply")

    (group_jid, message), (lid_jid, _) = session.go.sent
    assert message.conversation == text
    assert not message.HasField("extendedTextMessage")  # where neonize puts mentions
    assert (group_jid.User, group_jid.Server) == ("120363000000000000", "g.us")
    assert (lid_jid.User, lid_jid.Server) == (LID, "lid")
    assert (receipt.wa_id, receipt.sent_at) == (SENT_ID, SENT_AT)
    assert session.transport.new_message_id() is None


@pytest.mark.anyio
async def test_a_failed_send_is_retryable(make_transport: Any) -> None:
    async with running(*make_transport()) as session:
        await session.connected()
        session.go.send_error = "server returned error 500"

        with pytest.raises(TransportError, match="error 500") as failure:
            await send_hi(session.transport)

    assert failure.value.retryable


@pytest.mark.anyio
async def test_a_send_while_offline_fails_retryably(
    make_transport: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transport_module, "SEND_WAIT", 0)
    async with running(*make_transport()) as session:
        assert await session.statuses(1) == [("connecting", "")]

        with pytest.raises(TransportError, match="not connected") as failure:
            await send_hi(session.transport)

    assert failure.value.retryable
    assert session.go.sent == []


@pytest.mark.anyio
async def test_a_send_after_intake_stopped_offline_fails_at_once(make_transport: Any) -> None:
    """The daemon's grace period: run() is cancelled, the client still open."""
    transport, go = make_transport()
    session = Session(transport, go)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(session.run)
            assert await session.statuses(1) == [("connecting", "")]
            tg.cancel_scope.cancel()

        with anyio.fail_after(WAIT), pytest.raises(TransportError, match="not connected"):
            await send_hi(transport)  # nothing would reconnect: no waiting for SEND_WAIT
    finally:
        await transport.aclose()
        session.close()

    assert go.sent == []


# -- connection lifecycle ----------------------------------------------------


@pytest.mark.anyio
async def test_logged_out_ends_the_run_asking_to_pair_again(make_transport: Any) -> None:
    async with running(*make_transport()) as session:
        await session.connected()
        await dispatch(session.client, Disconnected(status=True))
        await dispatch(session.client, Connected(status=True))
        await dispatch(
            session.client, LoggedOut(OnConnect=False, Reason=ConnectFailureReason.LOGGED_OUT)
        )

        assert await session.statuses(3) == [
            ("disconnected", "connection lost; reconnecting"),
            ("connected", ""),
            ("logged_out", "LOGGED_OUT"),
        ]
        error = await session.end()

    assert not error.retryable
    assert "--force-qr" in str(error)
    assert session.go.stops >= 1  # stopped, not cancelled
    assert session.transport._task is None


@pytest.mark.anyio
async def test_a_replaced_stream_ends_the_run(make_transport: Any) -> None:
    async with running(*make_transport()) as session:
        await session.connected()
        await dispatch(session.client, StreamReplaced())  # an empty payload

        assert await session.statuses(1) == [("replaced", "another client took over this session")]
        error = await session.end()

    assert "another process" in str(error)
    assert not error.retryable


@pytest.mark.anyio
async def test_a_failed_connect_is_retried_after_a_backoff(make_transport: Any) -> None:
    transport, go = make_transport()
    go.connect_errors = ["failed to dial whatsapp web websocket: no such host"]
    async with running(transport, go) as session:
        assert await session.statuses(3) == [
            ("connecting", ""),
            ("disconnected", "failed to dial whatsapp web websocket: no such host"),
            ("connecting", ""),
        ]
        await dispatch(session.client, Connected(status=True))
        assert await session.statuses(1) == [("connected", "")]

    assert go.connects == 2


@pytest.mark.anyio
async def test_a_connect_failure_whatsmeow_gives_up_on_reconnects(make_transport: Any) -> None:
    async with running(*make_transport()) as session:
        await session.connected()
        failure = ConnectFailure(Reason=ConnectFailureReason.BAD_USER_AGENT, Message="bad ua")
        await dispatch(session.client, failure)

        assert await session.statuses(2) == [
            ("disconnected", "connect failure BAD_USER_AGENT: bad ua"),
            ("connecting", ""),
        ]

    assert session.go.connects == 2


@pytest.mark.anyio
async def test_a_real_connect_that_fails_is_reported_and_retried(tmp_path: Path) -> None:
    """The real Go side, dialling through a proxy that refuses: no network needed."""
    transport = NeonizeTransport(
        OWNER,
        session_db=str(tmp_path / "wa.db"),
        qr_png=tmp_path / "qr.png",
        proxy="http://127.0.0.1:1",
        backoff=(0.0,),
    )
    session = Session(transport, FakeGo())
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(session.run)
            statuses = await session.statuses(3)
            tg.cancel_scope.cancel()
    finally:
        await transport.aclose()
        session.close()

    assert [state for state, _ in statuses] == ["connecting", "disconnected", "connecting"]
    assert "connection refused" in statuses[1][1]


def test_bans_and_outdated_clients() -> None:
    ban = LIFECYCLE[neonize_events.TemporaryBanEv](
        TemporaryBan(Code=TemporaryBan.BLOCKED_BY_USERS, Expire=900)
    )
    outdated = LIFECYCLE[neonize_events.ClientOutdatedEv](ClientOutdated())

    assert (ban.status.state, ban.status.detail) == ("banned", "BLOCKED_BY_USERS; expires in 900 s")
    assert (ban.reconnect, ban.delay, ban.fatal) == (True, 900.0, None)
    assert outdated.status.state == "outdated"
    assert outdated.fatal is not None
    assert "upgrade neonize" in outdated.fatal


# -- pairing ----------------------------------------------------------------


@pytest.mark.anyio
async def test_a_qr_code_is_shown_and_pairing_times_out(
    make_transport: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], loose_umask: int
) -> None:
    terminal = io.StringIO()
    async with running(*make_transport(terminal=terminal, pairing_timeout=0)) as session:
        assert await session.statuses(1) == [("connecting", "")]
        await show_qr_code(session.client, b"2@abc,def,ghi,jkl")

        assert await session.statuses(1) == [("qr", f"scan the QR code ({tmp_path / 'qr.png'})")]
        error = await session.end()

    assert str(error) == "pairing timed out; run again"
    assert not error.retryable
    assert (tmp_path / "qr.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "qr.png").stat().st_mode & 0o777 == 0o600
    assert "█" in terminal.getvalue() or "▀" in terminal.getvalue()
    assert capsys.readouterr().out == ""


@pytest.mark.anyio
async def test_pairing_by_phone_code(
    make_transport: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    transport, go = make_transport(pair_phone="491701234567")
    async with running(transport, go) as session:
        assert await session.statuses(1) == [("connecting", "")]
        await show_qr_code(session.client, b"2@first")
        await show_qr_code(session.client, b"2@second")
        assert await session.statuses(1) == [("qr", "pairing code for 491701234567")]
        await dispatch(session.client, Connected(status=True))
        assert await session.statuses(1) == [("connected", "")]

    assert go.paired == ["491701234567"]  # once, not per QR refresh
    assert "ABCD-EFGH" in caplog.text
    assert not (tmp_path / "qr.png").exists()


@pytest.mark.anyio
async def test_a_refused_phone_code_ends_the_run(make_transport: Any) -> None:
    transport, go = make_transport(pair_phone="491701234567")
    go.pair_error = "bad request"
    async with running(transport, go) as session:
        await show_qr_code(session.client, b"2@first")
        error = await session.end()

    assert "pairing by phone code failed: bad request" in str(error)


# -- session file -------------------------------------------------------------


def test_force_qr_moves_the_old_session_aside(tmp_path: Path) -> None:
    db = tmp_path / "state" / "wa.db"
    assert prepare_session(str(db), force_qr=False) == str(db)
    assert db.parent.is_dir()
    db.write_bytes(b"old session")
    db.with_name("wa.db-wal").write_bytes(b"old wal")
    for path in db.parent.iterdir():
        path.chmod(0o644)  # as an older version left them

    prepare_session(str(db), force_qr=True)

    assert db.read_bytes() == b""  # a new, empty (private) database
    assert not db.with_name("wa.db-wal").exists()
    assert db.with_name("wa.db.old").read_bytes() == b"old session"
    assert db.with_name("wa.db.old-wal").read_bytes() == b"old wal"
    assert loose_modes(db.parent) == []


@pytest.mark.anyio
async def test_the_session_whatsmeow_creates_is_private(tmp_path: Path, loose_umask: int) -> None:
    """The real Go side opens (and fills) the file prepare_session made; home stays as it is."""
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    db = home / "wa" / "session.db"
    transport = NeonizeTransport(
        OWNER,
        session_db=prepare_session(str(db), force_qr=False),
        qr_png=tmp_path / "qr.png",
        proxy="http://127.0.0.1:1",
        backoff=(0.0,),
    )
    session = Session(transport, FakeGo())
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(session.run)
            await session.statuses(2)  # connecting, then the refused dial: the database is open
            tg.cancel_scope.cancel()
    finally:
        await transport.aclose()
        session.close()

    assert db.stat().st_size > 0  # whatsmeow's tables are in it
    assert loose_modes(home / "wa") == []
    assert home.stat().st_mode & 0o777 == 0o755 & ~loose_umask


def test_force_qr_cannot_reset_a_postgres_session() -> None:
    with pytest.raises(TransportError, match="postgres"):
        prepare_session("postgres://u:p@localhost/wa", force_qr=True)


# -- command line --------------------------------------------------------------


def test_running_with_stdio_never_imports_neonize(tmp_path: Path) -> None:
    env = daemon_env(
        PERPLEXITY_API_KEY=TEST_KEY, LLM_BASE_URL="http://127.0.0.1:9", PYTHONPROFILEIMPORTTIME="1"
    )
    daemon = Daemon(tmp_path, write_config(tmp_path / "app.json"), env).start()
    try:
        code, stderr = daemon.stop(signal.SIGTERM)
    finally:
        daemon.close()

    imports = [line for line in stderr.splitlines() if line.startswith("import time:")]
    assert code == 0
    assert any("pipeline.transport._stdio" in line for line in imports)
    assert not [line for line in imports if "neonize" in line]


def test_neonize_run_checks_the_config_before_touching_neonize(tmp_path: Path) -> None:
    config = write_config(tmp_path / "app.json")
    result = run_cli(
        ["run", "--transport", "neonize", "--config", str(config)],
        cwd=tmp_path,
        env=daemon_env(PERPLEXITY_API_KEY=None, PYTHONPROFILEIMPORTTIME="1"),
    )

    lines = result.stderr.splitlines()
    errors = [line for line in lines if not line.startswith("import time:")]
    assert result.returncode == 2
    assert len(errors) == 1
    assert "PERPLEXITY_API_KEY" in errors[0]
    assert not [line for line in lines if "neonize" in line]
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--transport", "neonize", "--pair-phone", "call me"], "--pair-phone"),
        (["--transport", "stdio", "--force-qr"], "need --transport neonize"),
    ],
)
def test_pairing_options_are_checked(tmp_path: Path, args: list[str], message: str) -> None:
    config = write_config(tmp_path / "app.json")
    result = run_cli(
        ["run", "--config", str(config), "--store", str(tmp_path / "store"), *args],
        cwd=tmp_path,
        env=daemon_env(PERPLEXITY_API_KEY=TEST_KEY),
    )

    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert message in result.stderr


def test_a_transport_that_gives_up_stops_the_daemon_with_status_1(tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "from pipeline import cli\n"
        "from pipeline.transport import TransportError\n"
        "class LoggedOut:\n"
        "    name, owner_jid = 'test', '491700000000@s.whatsapp.net'\n"
        "    def new_message_id(self): return None\n"
        "    async def run(self, deliver, status):\n"
        "        raise TransportError('logged out of WhatsApp: pair again', retryable=False)\n"
        "    async def send(self, *args, **kwargs):\n"
        "        raise TransportError('not connected', retryable=True)\n"
        "    async def aclose(self): pass\n"
        "cli._transport = lambda *args: LoggedOut()\n"
        "sys.exit(cli.main(['run', '--store', 'store']))\n"
    )
    write_config(tmp_path / "app.json")
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=daemon_env(PERPLEXITY_API_KEY=TEST_KEY, LLM_BASE_URL="http://127.0.0.1:9"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 3, result.stderr  # needs the owner: no restart
    assert result.stderr.splitlines()[-1] == "wabot: logged out of WhatsApp: pair again"
    assert "Traceback" not in result.stderr
    assert '"event": "stopped"' in result.stderr  # a clean shutdown, store closed


def test_bot_tag_reaches_the_go_library_before_it_loads(tmp_path: Path) -> None:
    """``whatsapp.bot_tag`` is in NEONIZE_BOT_TAG when neonize is first imported."""
    probe = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from pipeline import cli\n"
        "from pipeline.config import load_config\n"
        "from pipeline.logs import configure_logging\n"
        "configure_logging(log_dir=None)\n"
        "seen = []\n"
        "class Probe:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'neonize' and not seen:\n"
        "            seen.append(os.environ.get('NEONIZE_BOT_TAG'))\n"
        "sys.meta_path.insert(0, Probe())\n"
        "args = cli._parser().parse_args(['run', '--transport', 'neonize'])\n"
        "cli._transport(args, load_config(Path('app.json'), env_file=None), Path('store'))\n"
        "print(seen[0])\n"
    )
    write_config(tmp_path / "app.json", {"whatsapp": {"bot_tag": False}})
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=daemon_env(PERPLEXITY_API_KEY=TEST_KEY),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "off"
