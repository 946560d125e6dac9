"""Linking this process to a WhatsApp account: the session file, QR or phone code, a deadline.

The session (whatsmeow's device keys) lives in ``whatsapp.session_db``, a
SQLite file whose relative path is taken from the working directory, as
neonize does; a ``postgres://`` DSN is passed through untouched. Whoever has
the file can read and send the owner's messages, so it is created 0600 before
whatsmeow opens it (an empty file is an empty SQLite database), and so is the
QR code's image.

Since mid-2026 WhatsApp asks some accounts for a passkey before it links a new
device (whatsmeow's ``pair-passkey.go``). neonize has no way to answer it, but
its Go QR loop passes every event of whatsmeow's QR channel that is not a code
to a login-status callback, by name: ``passkey-request`` ends the pairing at
once with a line saying what happened, instead of a silent time-out.
"""

from __future__ import annotations

import asyncio
import ctypes
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import anyio
import segno
from neonize.exc import NeonizeError

from events.model import TransportStatus
from events.owner_only import private_dir, private_file, tighten, write_private
from pipeline.logs import get_logger
from pipeline.transport._base import TransportError

_log = get_logger(__name__)

# whatsmeow shows QR codes for about 160 s, then gives up while neonize keeps
# waiting forever; past this the transport ends so a restart can try again.
PAIRING_TIMEOUT = 170.0
_QR_SCALE = 8
# SQLite's companions of a database file: a stale one must not meet a new database.
_SQLITE_SUFFIXES = ("", "-journal", "-wal", "-shm")
_RETIRED = ".old"
# The QR channel's events (whatsmeow qrchan.go) that end a pairing, and what the owner reads.
PASSKEY_REQUIRED = (
    "WhatsApp asks this account for a passkey to link a new device, and neonize cannot "
    "answer that check yet: neither a QR code nor a phone code gets past it "
    "(README: Passkey-gated accounts)"
)
_ENDING = {
    "passkey-request": PASSKEY_REQUIRED,
    "error": "pairing failed: WhatsApp reported an error while linking; run again",
}


def prepare_session(session_db: str, *, force_qr: bool) -> str:
    """Make the session's directory and its private file; with ``force_qr`` move the old aside.

    The old files are renamed to ``*.old`` (replacing earlier ones), so an
    accidental ``--force-qr`` can be undone by renaming them back.
    """
    if session_db.startswith("postgres"):
        if force_qr:
            raise TransportError(
                "--force-qr cannot reset a postgres session: drop its whatsmeow_* tables",
                retryable=False,
            )
        return session_db
    path = Path(session_db)
    private_dir(path.parent, tighten=False)  # it may be the owner's home directory
    if force_qr and path.exists():
        for suffix in _SQLITE_SUFFIXES:
            old = path.with_name(path.name + suffix)
            if old.exists():
                old.replace(path.with_name(path.name + _RETIRED + suffix))
        _log.warning("old WhatsApp session moved aside", to=session_db + _RETIRED)
    private_file(path)
    tighten(*(path.with_name(path.name + end) for end in _SQLITE_SUFFIXES[1:]))
    tighten(*(path.with_name(path.name + _RETIRED + end) for end in _SQLITE_SUFFIXES))
    return session_db


def show_qr(data: bytes, png: Path, terminal: TextIO) -> None:
    """Save the QR code as ``png`` and draw it on ``terminal`` (never stdout)."""
    qr = segno.make_qr(data)
    image = io.BytesIO()
    qr.save(image, kind="png", scale=_QR_SCALE)
    private_dir(png.parent)
    write_private(png, image.getvalue())
    qr.terminal(out=terminal, compact=True)


class Pairing:
    """Shows each QR code (or asks once for a phone code) and ends a pairing that stalls."""

    def __init__(
        self,
        client: Any,
        *,
        qr_png: Path,
        terminal: TextIO,
        phone: str | None,
        timeout: float,
        emit: Callable[[TransportStatus], None],
        fail: Callable[[str], None],
    ) -> None:
        self._client = client
        self._qr_png = qr_png
        self._terminal = terminal
        self._phone = phone
        self._timeout = timeout
        self._emit = emit
        self._fail = fail
        self._seen = anyio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def started(self) -> bool:
        """Whether WhatsApp asked for pairing in this run."""
        return self._seen.is_set()

    def restart(self) -> None:
        """Before a run; on its event loop."""
        self._seen = anyio.Event()
        self._loop = asyncio.get_running_loop()

    def on_login_status(self, _uuid: int | None, status: int | None) -> None:
        """neonize's login-status callback (bound in place of its no-op before connect).

        Called from a Go thread with a C string: the name of a QR channel event.
        Nothing may raise here (ctypes would only print it).
        """
        try:
            name = ctypes.string_at(status).decode(errors="replace") if status else ""
            loop = self._loop
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(self._login_event, name)
        except Exception:
            _log.exception("cannot read a login status")

    def _login_event(self, name: str) -> None:
        ending = _ENDING.get(name)
        if ending is None:
            _log.info("pairing status", status=name[:64])
            return
        _log.warning("pairing ended", status=name)
        self._fail(ending)

    async def on_qr(self, _client: Any, data: bytes) -> None:
        """Each new QR code (about every 20 s while pairing); the first one starts the clock."""
        try:
            first = not self._seen.is_set()
            self._seen.set()
            if self._phone is not None:
                if first:  # one code per run: every QR refresh would otherwise issue another
                    await self._request_phone_code(self._phone)
                return
            show_qr(data, self._qr_png, self._terminal)
            # Not the code itself: it carries the new device's keys (terminal and qr.png show it).
            _log.warning("scan the QR code with WhatsApp > Linked devices", image=str(self._qr_png))
            if first:
                self._emit(TransportStatus(state="qr", detail=f"scan the QR code ({self._qr_png})"))
        except Exception:
            _log.exception("cannot show the QR code")

    async def on_pair_status(self, _client: Any, ev: Any) -> None:
        try:
            if ev.Error:
                _log.warning("pairing failed", error=ev.Error)
            else:
                _log.info("paired")
        except Exception:
            _log.exception("cannot read the pairing status")

    async def watch(self, online: anyio.Event) -> None:
        """End the run if a pairing that started does not finish in time."""
        await self._seen.wait()
        with anyio.move_on_after(self._timeout):
            await online.wait()
            return
        self._fail("pairing timed out; run again")

    async def _request_phone_code(self, phone: str) -> None:
        try:
            code = str(await self._client.PairPhone(phone, show_push_notification=True))
        except NeonizeError as exc:
            self._fail(f"pairing by phone code failed: {exc}")
            return
        # Not a secret: the owner types it into WhatsApp > Linked devices > Link with phone number.
        _log.warning("enter this code on the phone to link the bot", code=code, phone=phone)
        self._emit(TransportStatus(state="qr", detail=f"pairing code for {phone}"))
