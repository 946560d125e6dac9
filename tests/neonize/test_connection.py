"""The WhatsApp connection, offline: lifecycle events, pairing, and calls that hang.

Events travel neonize's real dispatch path (its Go callback entry points,
called from a thread), so these tests also catch a neonize upgrade that
changes how handlers are called.
"""

from __future__ import annotations

import tests.neonize_quiet  # noqa: F401  (first: see there)

# isort: split
import io
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
    KeepAliveRestored,
    KeepAliveTimeout,
    LoggedOut,
    StreamReplaced,
    TemporaryBan,
)

from events.testing import FakeClock
from pipeline.transport import Outgoing, TransportError
from pipeline.transport.neonize import NeonizeTransport
from pipeline.transport.neonize import _transport as transport_module
from pipeline.transport.neonize._lifecycle import LIFECYCLE
from pipeline.transport.neonize._pairing import PASSKEY_REQUIRED, prepare_session
from tests.e2e.harness import loose_modes
from tests.neonize_fakes import (
    OWNER,
    WAIT,
    FakeGo,
    Session,
    dispatch,
    running,
    show_qr_code,
)

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
async def test_a_refused_connection_carries_whatsmeows_reason_number(make_transport: Any) -> None:
    """The number makes the owner's alert immediate: it will not mend by itself."""
    async with running(*make_transport()) as session:
        await session.connected()
        failure = ConnectFailure(Reason=ConnectFailureReason.BAD_USER_AGENT, Message="bad ua")
        await dispatch(session.client, failure)
        status = await session.next_status()

    assert (status.state, status.code) == ("disconnected", 409)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("reason", "code", "says"),
    [
        (ConnectFailureReason.MAIN_DEVICE_GONE, 403, "WhatsApp locked the account (403)"),
        (ConnectFailureReason.UNKNOWN_LOGOUT, 406, "WhatsApp banned the account (406)"),
    ],
)
async def test_a_logout_at_connect_for_a_locked_or_banned_account_says_so(
    make_transport: Any, reason: int, code: int, says: str
) -> None:
    """whatsmeow reports a 403/406 connect failure as LoggedOut (IsLoggedOut): pairing
    again does not help until the owner has dealt with the lock or ban on the phone."""
    async with running(*make_transport()) as session:
        assert await session.statuses(1) == [("connecting", "")]
        await dispatch(session.client, LoggedOut(OnConnect=True, Reason=reason))
        status = await session.next_status()
        error = await session.end()

    assert (status.state, status.code) == ("banned", code)
    assert status.detail.startswith(says)
    assert str(error).startswith(says)
    assert "open WhatsApp on the phone" in str(error)
    assert "\n" not in str(error)
    assert not error.retryable


@pytest.mark.anyio
async def test_the_watchdog_waits_out_a_temporary_ban(make_transport: Any) -> None:
    """A ban is waited out, not taken for a silent connection: no "reconnecting" while it
    lasts; the silence is counted from its end (the watchdog driven tick by tick)."""
    clock = FakeClock(1_764_070_000.0)
    ticks_in, ticks = anyio.create_memory_object_stream[None]()
    transport, go = make_transport(
        clock=clock, silence_limit=300.0, watch_tick=ticks.receive, backoff=(5.0,)
    )

    async def look() -> None:
        """Let the watchdog look once (the second send waits until the first look is done)."""
        await ticks_in.send(None)
        await ticks_in.send(None)

    with ticks_in, ticks:
        async with running(transport, go) as session:
            await session.connected()
            ban = TemporaryBan(Code=TemporaryBan.SENT_TOO_MANY_SAME_MESSAGE, Expire=3600)
            await dispatch(session.client, ban)
            assert (await session.next_status()).state == "banned"

            clock.advance(1800)  # far past the silence limit, within the ban
            await look()
            clock.advance(1800 + 301)  # the ban is over, and the limit past its end
            await look()
            state, detail = (await session.statuses(1))[0]

    assert state == "disconnected"
    assert detail == "no connection for 301 s; reconnecting"  # not 1800 s, during the ban
    assert go.connects == 1


@pytest.mark.anyio
async def test_a_passkey_request_ends_pairing_at_once_saying_why(make_transport: Any) -> None:
    """whatsmeow's QR channel emits ``passkey-request`` after the scan (pair-passkey.go);
    goneonize's QR loop hands its name to the login callback from a Go thread."""
    async with running(*make_transport()) as session:
        assert await session.statuses(1) == [("connecting", "")]
        await show_qr_code(session.client, b"2@abc,def,ghi,jkl")
        assert (await session.next_status()).state == "qr"
        await session.go.login_status("passkey-request")
        error = await session.end()

    assert str(error) == PASSKEY_REQUIRED
    assert not error.retryable
    assert "passkey" in str(error)
    assert "Passkey-gated accounts" in str(error)


@pytest.mark.anyio
async def test_other_login_events_let_pairing_go_on(make_transport: Any) -> None:
    async with running(*make_transport()) as session:
        assert await session.statuses(1) == [("connecting", "")]
        await show_qr_code(session.client, b"2@abc,def,ghi,jkl")
        assert (await session.next_status()).state == "qr"
        await session.go.login_status("success")
        await dispatch(session.client, Connected(status=True))
        assert await session.statuses(1) == [("connected", "")]

    assert session.error is None


async def refused_connect(session_db: str, qr_png: Path, count: int) -> list[tuple[str, str]]:
    """The first ``count`` statuses of the real Go side dialling through a proxy that refuses."""
    transport = NeonizeTransport(
        OWNER, session_db=session_db, qr_png=qr_png, proxy="http://127.0.0.1:1", backoff=(0.0,)
    )
    session = Session(transport, FakeGo())
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(session.run)
            statuses = await session.statuses(count)
            tg.cancel_scope.cancel()
    finally:
        await transport.aclose()
        session.close()
    return statuses


@pytest.mark.anyio
async def test_a_real_connect_that_fails_is_reported_and_retried(tmp_path: Path) -> None:
    """The real Go side: no network needed."""
    statuses = await refused_connect(str(tmp_path / "wa.db"), tmp_path / "qr.png", 3)

    assert [state for state, _ in statuses] == ["connecting", "disconnected", "connecting"]
    assert "connection refused" in statuses[1][1]


def test_a_lock_or_ban_ends_the_run_however_it_is_reported() -> None:
    for reason, code in [
        (ConnectFailureReason.MAIN_DEVICE_GONE, 403),
        (ConnectFailureReason.UNKNOWN_LOGOUT, 406),
    ]:
        failure = LIFECYCLE[neonize_events.ConnectFailureEv](ConnectFailure(Reason=reason))
        logout = LIFECYCLE[neonize_events.LoggedOutEv](LoggedOut(OnConnect=True, Reason=reason))
        assert failure == logout
        assert failure.status is not None
        assert (failure.status.state, failure.status.code, failure.reconnect) == (
            "banned",
            code,
            False,
        )
        assert failure.fatal is not None


def test_bans_and_outdated_clients() -> None:
    ban = LIFECYCLE[neonize_events.TemporaryBanEv](
        TemporaryBan(Code=TemporaryBan.BLOCKED_BY_USERS, Expire=900)
    )
    outdated = LIFECYCLE[neonize_events.ClientOutdatedEv](ClientOutdated())

    assert ban.status is not None
    assert outdated.status is not None
    assert (ban.status.state, ban.status.detail) == ("banned", "BLOCKED_BY_USERS; expires in 900 s")
    assert (ban.reconnect, ban.delay, ban.fatal) == (True, 900.0, None)
    assert outdated.status.state == "outdated"
    assert outdated.fatal is not None
    assert "upgrade neonize" in outdated.fatal


# -- pairing ----------------------------------------------------------------


@pytest.mark.anyio
async def test_a_qr_code_is_shown_and_pairing_times_out(
    make_transport: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    loose_umask: int,
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
    # The code carries the new device's keys: the terminal and qr.png show it, logs never do.
    assert "scan the QR code" in caplog.text
    assert "abc,def" not in caplog.text


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
    # Connecting, then the refused dial: by then whatsmeow has opened the database.
    await refused_connect(prepare_session(str(db), force_qr=False), tmp_path / "qr.png", 2)

    assert db.stat().st_size > 0  # whatsmeow's tables are in it
    assert loose_modes(home / "wa") == []
    assert home.stat().st_mode & 0o777 == 0o755


def test_force_qr_cannot_reset_a_postgres_session() -> None:
    with pytest.raises(TransportError, match="postgres"):
        prepare_session("postgres://u:p@localhost/wa", force_qr=True)


@pytest.mark.anyio
async def test_keep_alive_failures_hold_sends_until_restored(
    make_transport: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transport_module, "SEND_WAIT", 0)
    async with running(*make_transport()) as session:
        await session.connected()
        await dispatch(session.client, KeepAliveTimeout(ErrorCount=2, LastSuccess=1_764_070_000))
        [(state, detail)] = await session.statuses(1)
        with pytest.raises(TransportError, match="not connected"):
            await session.transport.send(Outgoing(to="491701111111", text="hi"))
        await dispatch(session.client, KeepAliveRestored())
        assert await session.statuses(1) == [("connected", "keep-alive restored")]
        await session.transport.send(Outgoing(to="491701111111", text="hi"))

    assert state == "disconnected"
    assert "keep-alive failing (2 in a row)" in detail
    assert len(session.go.sent) == 1


@pytest.mark.anyio
async def test_a_connection_silent_past_the_limit_is_restarted(make_transport: Any) -> None:
    transport, go = make_transport(silence_limit=0.05)
    async with running(transport, go) as session:
        await session.connected()
        await dispatch(session.client, KeepAliveTimeout(ErrorCount=1, LastSuccess=1_764_070_000))
        assert (await session.next_status()).state == "disconnected"
        state, detail = (await session.statuses(1))[0]
        assert state == "disconnected"
        assert "reconnecting" in detail
        assert await session.statuses(1) == [("connecting", "")]

    assert go.connects == 2
    assert go.stops >= 1


@pytest.mark.anyio
async def test_a_connect_that_never_returns_does_not_hold_up_closing(
    make_transport: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """whatsmeow's QR loop ignores Stop: closing waits a bounded time, then goes on."""
    monkeypatch.setattr(transport_module, "STOP_WAIT", 0.2)
    transport, go = make_transport()
    go.hang = True
    session = Session(transport, go)
    async with anyio.create_task_group() as tg:
        tg.start_soon(session.run)
        assert await session.statuses(1) == [("connecting", "")]
        with anyio.fail_after(WAIT):
            await transport.aclose()
        tg.cancel_scope.cancel()
    session.close()

    assert go.stops == 1
