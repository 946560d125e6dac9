"""What each neonize connection event means for the transport.

whatsmeow reconnects by itself after a plain disconnect, and after three
minutes of failed keep-alive pings (then without a ``Disconnected`` event, so
the keep-alive events are the only sign). After a logout, a replaced stream or
an outdated client it stops for good, so the transport ends with an error the
owner can act on. After a temporary ban or another connect failure it also
stops, but trying again later can work, so the transport reconnects on its own
after a delay.

A logout at connect may be WhatsApp locking (403) or banning (406) the
account: pairing again does not help until the owner has dealt with it on the
phone, so the transport says so instead of asking to pair again. Statuses
carry whatsmeow's number for the reason (``TransportStatus.code``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from neonize.aioze.events import (
    ClientOutdatedEv,
    ConnectedEv,
    ConnectFailureEv,
    DisconnectedEv,
    KeepAliveRestoredEv,
    KeepAliveTimeoutEv,
    LoggedOutEv,
    StreamErrorEv,
    StreamReplacedEv,
    TemporaryBanEv,
)
from neonize.proto.Neonize_pb2 import ConnectFailureReason, TemporaryBan

from events.model import TransportStatus

# Used when a ban arrives without an expiry.
_DEFAULT_BAN_SECONDS = 3600.0
# neonize's ConnectFailureReason names -> whatsmeow's numbers (types/events/events.go).
_REASON_CODES = {
    "GENERIC": 400,
    "LOGGED_OUT": 401,
    "TEMP_BANNED": 402,
    "MAIN_DEVICE_GONE": 403,  # "locked" in WhatsApp Web's code; also after a phone change
    "UNKNOWN_LOGOUT": 406,  # "banned" in WhatsApp Web's code
    "CLIENT_OUTDATED": 405,
    "BAD_USER_AGENT": 409,
    "INTERNAL_SERVER_ERROR": 500,
    "EXPERIMENTAL": 501,
    "SERVICE_UNAVAILABLE": 503,
}
# A logout at connect for one of these: the account itself is locked or banned.
_ACCOUNT_BLOCKED = {
    403: (
        "WhatsApp locked the account (403)",
        "open WhatsApp on the phone: if it shows a lock or ban, follow it (or appeal); "
        "if the number moved to a new phone, pair again with --force-qr",
    ),
    406: (
        "WhatsApp banned the account (406)",
        "open WhatsApp on the phone to see the ban and appeal it; "
        "pairing again cannot help until it is lifted",
    ),
}


class Outcome(NamedTuple):
    """A status to record and what the transport does next."""

    status: TransportStatus | None  # None: nothing to record
    fatal: str | None = None  # end run() with this message
    reconnect: bool = False  # whatsmeow gave up: reconnect after a delay
    delay: float | None = None  # that delay, when the event names one
    online: bool | None = None  # sends may go (True), must wait (False), as before (None)


def _connected(_: Any) -> Outcome:
    return Outcome(TransportStatus(state="connected"), online=True)


def _disconnected(_: Any) -> Outcome:
    status = TransportStatus(state="disconnected", detail="connection lost; reconnecting")
    return Outcome(status, online=False)


def _keepalive_timeout(ev: Any) -> Outcome:
    detail = f"keep-alive failing ({ev.ErrorCount} in a row); whatsmeow reconnects after 3 min"
    return Outcome(TransportStatus(state="disconnected", detail=detail), online=False)


def _keepalive_restored(_: Any) -> Outcome:
    status = TransportStatus(state="connected", detail="keep-alive restored")
    return Outcome(status, online=True)


def _stream_error(ev: Any) -> Outcome:
    # whatsmeow only reports codes it does not handle; a close and a reconnect follow.
    return Outcome(None)


def _logged_out(ev: Any) -> Outcome:
    reason = _enum_name(ConnectFailureReason, ev.Reason)
    code = _REASON_CODES.get(reason)
    return _account_blocked(code) or Outcome(
        TransportStatus(state="logged_out", detail=reason, code=code),
        fatal=f"logged out of WhatsApp ({reason}): pair again with --force-qr",
        online=False,
    )


def _account_blocked(code: int | None) -> Outcome | None:
    """The end of the run for a locked or banned account (403, 406); None for other codes."""
    blocked = _ACCOUNT_BLOCKED.get(code) if code is not None else None
    if blocked is None:
        return None
    what, todo = blocked
    return Outcome(
        TransportStatus(state="banned", detail=f"{what}; {todo}", code=code),
        fatal=f"{what}: {todo}",
        online=False,
    )


def _replaced(_: Any) -> Outcome:
    return Outcome(
        TransportStatus(state="replaced", detail="another client took over this session"),
        fatal="another process is using this WhatsApp session: stop it, then run again",
        online=False,
    )


def _outdated(_: Any) -> Outcome:
    return Outcome(
        TransportStatus(state="outdated", detail="WhatsApp rejected the client version"),
        fatal="WhatsApp says this client is outdated: upgrade neonize",
        online=False,
    )


def _banned(ev: Any) -> Outcome:
    seconds = float(ev.Expire) or _DEFAULT_BAN_SECONDS
    reason = _enum_name(TemporaryBan.TempBanReason, ev.Code)
    return Outcome(
        TransportStatus(state="banned", detail=f"{reason}; expires in {seconds:.0f} s", code=402),
        reconnect=True,
        delay=seconds,
        online=False,
    )


def _connect_failure(ev: Any) -> Outcome:
    """A refusal whatsmeow does not retry: the transport tries again later."""
    reason = _enum_name(ConnectFailureReason, ev.Reason)
    detail = f"connect failure {reason}" + (f": {ev.Message}" if ev.Message else "")
    # No known number: still a refusal, and the status says so (400, "generic").
    code = _REASON_CODES.get(reason, 400)
    status = TransportStatus(state="disconnected", detail=detail, code=code)
    # whatsmeow reports 403/406 as a logout; should one come as a failure, it is as final.
    return _account_blocked(code) or Outcome(status, reconnect=True, online=False)


def _enum_name(enum: Any, value: int) -> str:
    try:
        name: str = enum.Name(value)
    except ValueError:
        return f"code {value}"
    return name


LIFECYCLE: dict[Any, Callable[[Any], Outcome]] = {
    ConnectedEv: _connected,
    DisconnectedEv: _disconnected,
    KeepAliveTimeoutEv: _keepalive_timeout,
    KeepAliveRestoredEv: _keepalive_restored,
    StreamErrorEv: _stream_error,
    LoggedOutEv: _logged_out,
    StreamReplacedEv: _replaced,
    ClientOutdatedEv: _outdated,
    TemporaryBanEv: _banned,
    ConnectFailureEv: _connect_failure,
}
"""The connection events the transport subscribes to, each with its meaning."""
