"""WhatsApp through neonize (whatsmeow over FFI), behind the ``Transport`` interface.

Import this module only when the neonize transport is chosen, after
``configure_logging`` (neonize's import installs a root log handler unless
one exists) and after setting ``NEONIZE_BOT_TAG`` (the Go library reads the
environment when it is loaded). research/neonize.md explains the pitfalls
the code below works around.

neonize calls each handler as a fresh task on the event loop and drops
whatever it raises, so every handler logs its own failures and does no
more than convert the event and queue it; ``run`` hands the queue to the
daemon in arrival order.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TextIO

import anyio
from neonize._binder import ProxySettings
from neonize.aioze.client import NewAClient
from neonize.aioze.events import MessageEv, PairStatusEv
from neonize.exc import NeonizeError
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message

from events.jid import InvalidJid, normalize
from events.model import ReplyPurpose, TransportStatus
from pipeline.config import WhatsAppConfig
from pipeline.logs import get_logger
from pipeline.transport._base import (
    Deliver,
    Inbound,
    SendReceipt,
    StatusSink,
    TransportError,
)
from pipeline.transport.neonize._convert import jid_from_str, message_received
from pipeline.transport.neonize._lifecycle import LIFECYCLE, Outcome
from pipeline.transport.neonize._pairing import PAIRING_TIMEOUT, prepare_session, show_qr

_log = get_logger(__name__)

# Waits before reconnecting after a failed connect; the last one repeats.
BACKOFF = (2.0, 5.0, 10.0, 30.0, 60.0)
# How long a send waits for the connection before it fails (and the sender retries).
SEND_WAIT = 30.0
# How long shutdown waits for the Go side to let go: a dial in progress holds it up to ~60 s.
STOP_WAIT = 10.0
_QR_FILE = "qr.png"


class _Fatal(NamedTuple):
    message: str


_Item = Inbound | TransportStatus | _Fatal


def from_config(
    whatsapp: WhatsAppConfig, store: Path, *, force_qr: bool = False, pair_phone: str | None = None
) -> NeonizeTransport:
    """The transport for ``app.json``'s ``whatsapp`` section; QR images go to ``store``."""
    return NeonizeTransport(
        whatsapp.phone_number,
        session_db=prepare_session(whatsapp.session_db, force_qr=force_qr),
        qr_png=store / _QR_FILE,
        pair_phone=pair_phone,
    )


class NeonizeTransport:
    """One WhatsApp linked device; ``run`` connects, reconnects and ends on fatal events."""

    name = "neonize"

    def __init__(
        self,
        owner: str,
        *,
        session_db: str,
        qr_png: Path,
        pair_phone: str | None = None,
        proxy: str | None = None,
        terminal: TextIO | None = None,
        clock: Callable[[], float] = time.time,
        backoff: Sequence[float] = BACKOFF,
        pairing_timeout: float = PAIRING_TIMEOUT,
    ) -> None:
        """``pair_phone`` (digits) pairs by phone code instead of QR; ``proxy`` is an
        ``http(s)://`` or ``socks5://`` URL for the WhatsApp connection."""
        self.owner_jid = normalize(owner)
        self._qr_png = qr_png
        self._pair_phone = pair_phone
        self._proxy = ProxySettings(proxy) if proxy else None
        self._terminal = terminal if terminal is not None else sys.stderr
        self._clock = clock
        self._backoff = tuple(backoff)
        self._pairing_timeout = pairing_timeout
        self._items_in, self._items = anyio.create_memory_object_stream[_Item](math.inf)
        self._failures = 0
        self._reconnect_delay: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake: anyio.Event | None = None
        self._online: anyio.Event | None = None
        self._qr_seen: anyio.Event | None = None
        self._closed = False
        # Keep a reference: neonize stops the Go client when this object is collected.
        self._client: Any = NewAClient(session_db)
        self._subscribe()

    # -- Transport --------------------------------------------------------

    def new_message_id(self) -> str | None:
        """None: neonize cannot send with a preset id."""
        return None

    async def run(self, deliver: Deliver, status: StatusSink) -> None:
        """Connect and deliver until cancelled; a fatal event ends it with a TransportError."""
        self._online = anyio.Event()
        self._qr_seen = anyio.Event()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._supervise)
                tg.start_soon(self._watch_pairing, self._qr_seen, self._online)
                fatal = await self._hand_over(deliver, status)
                tg.cancel_scope.cancel()
        finally:
            online = self._online
            if online is not None and not online.is_set():
                # Nothing reconnects once run() has ended: sends fail now, waiting ones too.
                self._online = None
                online.set()
        await self._stop_client()
        raise TransportError(fatal, retryable=False)

    async def send(
        self,
        chat: str,
        text: str,
        *,
        wa_id: str | None,
        reply_to: str | None,
        purpose: ReplyPurpose,
    ) -> SendReceipt:
        """Send ``text`` as a plain conversation message (so ``@digits`` stay text)."""
        if self._closed:
            raise TransportError("neonize transport is closed", retryable=False)
        try:
            to = jid_from_str(normalize(chat))
        except InvalidJid as exc:
            raise TransportError(str(exc), retryable=False) from None
        online = self._online
        with anyio.move_on_after(SEND_WAIT):
            if online is not None:
                await online.wait()
        if online is None or not online.is_set():
            raise TransportError("not connected to WhatsApp", retryable=True)
        try:
            response = await self._client.send_message(to, Message(conversation=text))
        except NeonizeError as exc:
            raise TransportError(f"send failed: {exc}", retryable=True) from exc
        sent_at = float(response.Timestamp) or self._clock()  # seconds, unlike inbound stamps
        return SendReceipt(str(response.ID), sent_at)

    async def aclose(self) -> None:
        """Stop the Go client and wait (bounded) for its connect task to end."""
        self._closed = True
        self._items_in.close()
        self._items.close()
        await self._stop_client()

    # -- receiving ----------------------------------------------------------

    def _subscribe(self) -> None:
        """Register every handler: neonize forwards only types known before ``connect``."""
        self._client.qr(self._on_qr)
        self._client.event(MessageEv)(self._on_message)
        self._client.event(PairStatusEv)(self._on_pair_status)
        for event_type, meaning in LIFECYCLE.items():
            self._client.event(event_type)(self._lifecycle_handler(meaning))

    async def _hand_over(self, deliver: Deliver, status: StatusSink) -> str:
        """Pass queued items on in order until a fatal one; returns its message."""
        async for item in self._items:
            if isinstance(item, Inbound):
                await deliver(item)
            elif isinstance(item, TransportStatus):
                await status(item)
            else:
                return item.message
        return "neonize transport closed"

    def _emit(self, item: _Item) -> None:
        try:
            self._items_in.send_nowait(item)
        except anyio.ClosedResourceError:
            _log.debug("transport closed; dropped", item=type(item).__name__)

    async def _on_message(self, _client: Any, ev: Any) -> None:
        """Convert and queue; nothing of the message is logged, its chat may be unmonitored."""
        try:
            event = message_received(ev)
        except InvalidJid:
            _log.debug("message from an unusable chat dropped")
            return
        except Exception as exc:
            # The type and the line, not the message: it could quote a chat's id or text.
            where = traceback.extract_tb(exc.__traceback__)[-1]
            _log.error(
                "cannot read an incoming message",
                error=type(exc).__name__,
                at=f"{Path(where.filename).name}:{where.lineno}",
            )
            return
        if event is None:
            _log.debug("message without text or media ignored")
            return
        self._emit(Inbound(event, self._clock()))

    def _lifecycle_handler(
        self, meaning: Callable[[Any], Outcome]
    ) -> Callable[[Any, Any], Awaitable[None]]:
        async def handle(_client: Any, ev: Any) -> None:
            try:
                self._apply(meaning(ev))
            except Exception:
                _log.exception("cannot handle a connection event")

        return handle

    def _apply(self, outcome: Outcome) -> None:
        state = outcome.status.state
        if state == "connected":
            self._failures = 0
            if self._online is not None:
                self._online.set()
        else:
            self._offline()
        self._emit(outcome.status)
        if outcome.fatal is not None:
            self._emit(_Fatal(outcome.fatal))
        elif outcome.reconnect:
            delay = outcome.delay
            self._reconnect_delay = delay if delay is not None else self._next_delay()
            if self._wake is not None:
                self._wake.set()

    def _offline(self) -> None:
        """Sends wait again from now on (a set event would let them through)."""
        if self._online is not None and self._online.is_set():
            self._online = anyio.Event()

    async def _on_pair_status(self, _client: Any, ev: Any) -> None:
        try:
            if ev.Error:
                _log.warning("pairing failed", error=ev.Error)
            else:
                _log.info("paired", jid=f"{ev.ID.User}@{ev.ID.Server}")
        except Exception:
            _log.exception("cannot read the pairing status")

    async def _on_qr(self, _client: Any, data: bytes) -> None:
        """Each new QR code (about every 20 s while pairing); the first one starts the clock."""
        try:
            first = self._qr_seen is not None and not self._qr_seen.is_set()
            if self._qr_seen is not None:
                self._qr_seen.set()
            if self._pair_phone is not None:
                if first:  # one code per run: every QR refresh would otherwise issue another
                    await self._request_phone_code(self._pair_phone)
                return
            show_qr(data, self._qr_png, self._terminal)
            _log.warning("scan the QR code with WhatsApp > Linked devices", qr=data.decode())
            if first:
                self._emit(TransportStatus(state="qr", detail=f"scan the QR code ({self._qr_png})"))
        except Exception:
            _log.exception("cannot show the QR code")

    async def _request_phone_code(self, phone: str) -> None:
        try:
            code = str(await self._client.PairPhone(phone, show_push_notification=True))
        except NeonizeError as exc:
            self._emit(_Fatal(f"pairing by phone code failed: {exc}"))
            return
        # Not a secret: the owner types it into WhatsApp > Linked devices > Link with phone number.
        _log.warning("enter this code on the phone to link the bot", code=code, phone=phone)
        self._emit(TransportStatus(state="qr", detail=f"pairing code for {phone}"))

    async def _watch_pairing(self, qr_seen: anyio.Event, online: anyio.Event) -> None:
        """End the run if a pairing that started does not finish in time."""
        await qr_seen.wait()
        with anyio.move_on_after(self._pairing_timeout):
            await online.wait()
            return
        self._emit(_Fatal("pairing timed out; run again"))

    # -- connection -----------------------------------------------------------

    async def _supervise(self) -> None:
        """Connect; after a failed connect or a failure whatsmeow won't retry, reconnect later."""
        while not self._closed:
            self._emit(TransportStatus(state="connecting"))
            self._wake = wake = anyio.Event()
            self._reconnect_delay = None
            task = self._task = await self._client.connect(self._proxy)
            task.add_done_callback(lambda _, ended=wake: ended.set())
            await wake.wait()  # never await the task itself: cancelling it freezes the loop
            self._offline()
            delay = self._reconnect_delay
            if task.done():
                error = _ending(task)
                self._emit(TransportStatus(state="disconnected", detail=error))
                _log.warning("cannot connect to WhatsApp", error=error)
                delay = self._next_delay()
            await self._stop_client()
            await anyio.sleep(delay or 0.0)

    def _next_delay(self) -> float:
        delay = self._backoff[min(self._failures, len(self._backoff) - 1)]
        self._failures += 1
        return delay

    async def _stop_client(self) -> None:
        """Stop the Go client and wait for its connect task; never cancel that task."""
        task, self._task = self._task, None
        if task is None:
            return
        # Shielded: a task left running would be cancelled at loop exit, which freezes it.
        with anyio.move_on_after(STOP_WAIT, shield=True) as waited:
            await self._client.stop()
            await asyncio.wait({task})
        if waited.cancelled_caught:
            _log.warning("WhatsApp client still stopping", waited_seconds=STOP_WAIT)
        elif not task.cancelled():
            task.exception()  # retrieved, so asyncio does not report it at exit


def _ending(task: asyncio.Task[None]) -> str:
    """Why a connect task ended, in one line."""
    if task.cancelled():
        return "connection cancelled"
    error = task.exception()
    return str(error) if error is not None else "connection ended"
