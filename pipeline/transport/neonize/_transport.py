"""WhatsApp through neonize (whatsmeow over FFI), behind the ``Transport`` interface.

Import this package only when the neonize transport is chosen, after
``configure_logging`` (neonize's import installs a root log handler unless
one exists). docs/whatsapp.md has the facts about neonize and WhatsApp that
explain the pitfalls the code below works around.

neonize calls each handler as a fresh task on the event loop and drops
whatever it raises, so every handler logs its own failures and does no more
than convert the event and queue it; ``run`` hands the queue to the daemon in
arrival order. An event that carries a message holds neonize's Go thread until
the daemon has recorded it (``_arrival``): WhatsApp has acknowledged it by then.

The bot runs on the owner's own account: a linked device that is "available"
(or shows "composing") stops push notifications on the owner's phone, so the
transport sends the global presence "unavailable" on every connect and after
every typing indicator.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TextIO

import anyio
import msgspec
from neonize._binder import ProxySettings
from neonize.aioze.client import NewAClient
from neonize.aioze.events import MessageEv, PairStatusEv, ReceiptEv
from neonize.events import EVENT_TO_INT, UndecryptableMessageEv
from neonize.exc import NeonizeError
from neonize.proto.Neonize_pb2 import UndecryptableMessage
from neonize.utils.enum import (
    ChatPresence,
    ChatPresenceMedia,
    MediaType,
    Presence,
    ReceiptType,
)

from events.jid import InvalidJid, normalize
from events.model import MessageReceived, MessageUndecryptable, TransportStatus
from pipeline.config import WhatsAppConfig
from pipeline.logs import get_logger
from pipeline.transport._base import (
    RESTRICTED_CODES,
    Deliver,
    Inbound,
    Outgoing,
    SendReceipt,
    StatusSink,
    TransportError,
    Voice,
)
from pipeline.transport._secrets_file import SecretsFile
from pipeline.transport.neonize import _arrival as arrival
from pipeline.transport.neonize import _convert as convert
from pipeline.transport.neonize._capture import Capture
from pipeline.transport.neonize._gocalls import DaemonThreadGo
from pipeline.transport.neonize._lifecycle import LIFECYCLE, Outcome
from pipeline.transport.neonize._media import download_for
from pipeline.transport.neonize._pairing import PAIRING_TIMEOUT, Pairing, prepare_session
from pipeline.transport.neonize._receipts import receipts
from pipeline.transport.neonize._secret import Secrets

_log = get_logger(__name__)

# Waits before reconnecting after a failed connect; the last one repeats.
BACKOFF = (2.0, 5.0, 10.0, 30.0, 60.0)
# How long a send waits for the connection before it fails (and the sender retries).
SEND_WAIT = 30.0
# How long shutdown waits for the Go side to let go: a dial in progress holds it up to ~60 s.
STOP_WAIT = 10.0
# A connection silent this long (no reconnect by whatsmeow) is restarted by us.
SILENCE_LIMIT = 300.0
# Presence and receipts are courtesies: never wait long for them.
_COURTESY_WAIT = 5.0
# A LID's phone number from whatsmeow's store: a local read, not worth a long wait.
_LID_WAIT = 5.0
# A voice note is small; whatsmeow uploads it with no deadline of its own (an HTTP
# client without a timeout), and the chat's later replies wait behind it.
UPLOAD_WAIT = 60.0
_QR_FILE = "qr.png"
# How whatsmeow words a send the server answered with an error (send.go), as neonize
# raises it (SendMessageError): "server returned error 463".
_SERVER_ERROR = re.compile(r"server returned error (\d+)")


class _Fatal(NamedTuple):
    message: str


class _Arrived(NamedTuple):
    """A fact for the daemon; ``kept`` runs once it took it (a monitored chat's)."""

    inbound: Inbound
    arrival: arrival.Arrival | None  # the Go callback waiting for it, if any
    kept: Callable[[], None] | None = None


_Item = _Arrived | TransportStatus | _Fatal
# The events that carry a message: the Go callback waits until they are recorded.
_MESSAGE_EVENTS = (EVENT_TO_INT[MessageEv], EVENT_TO_INT[UndecryptableMessage])


def from_config(
    whatsapp: WhatsAppConfig,
    store: Path,
    *,
    force_qr: bool = False,
    pair_phone: str | None = None,
    capture: Path | None = None,
) -> NeonizeTransport:
    """The transport for ``app.json``'s ``whatsapp`` section; QR images and the
    secrets of recent messages go to ``store``, raw events to ``capture`` if given."""
    return NeonizeTransport(
        whatsapp.phone_number,
        session_db=prepare_session(whatsapp.session_db, force_qr=force_qr),
        qr_png=store / _QR_FILE,
        pair_phone=pair_phone,
        proxy=whatsapp.proxy,
        secrets=SecretsFile(store),
        capture=capture,
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
        silence_limit: float = SILENCE_LIMIT,
        secrets: SecretsFile | None = None,
        capture: Path | None = None,
        record_wait: float = arrival.RECORD_WAIT,
        watch_tick: Callable[[], Awaitable[None]] | None = None,
        upload_wait: float = UPLOAD_WAIT,
    ) -> None:
        """``pair_phone`` (digits) pairs by phone code instead of QR; ``proxy`` is an
        ``http(s)://`` or ``socks5://`` URL for the WhatsApp connection; ``secrets``
        keeps recent message secrets across restarts; ``capture`` is where raw
        events of monitored chats go (``run --capture-inbound``).
        ``watch_tick``: what the silence watchdog awaits between two looks (tests
        drive it; by default a tenth of ``silence_limit``); ``upload_wait``: how long a
        voice note's upload may take before the send fails (and is tried again)."""
        self.owner_jid = normalize(owner)
        self._proxy = ProxySettings(proxy) if proxy else None
        self._clock = clock
        self._backoff = tuple(backoff)
        self._silence_limit = silence_limit
        self._upload_wait = upload_wait
        self._watch_tick = watch_tick or (lambda: anyio.sleep(max(silence_limit / 10, 0.01)))
        self._items_in, self._items = anyio.create_memory_object_stream[_Item](math.inf)
        self._secrets = Secrets(secrets)
        self._capture = Capture(capture) if capture is not None else None
        self._failures = 0
        self._reconnect_delay: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake: anyio.Event | None = None
        self._online: anyio.Event | None = None
        self._offline_since: float | None = None
        # When the newest wait the transport chose (a backoff, a ban's expiry) ends.
        self._resume_at: float | None = None
        self._closed = False
        # Keep a reference: neonize stops the Go client when this object is collected.
        self._client: Any = NewAClient(session_db)
        self._client._NewAClient__client = DaemonThreadGo()
        self._gate = arrival.Gate(self._client, _MESSAGE_EVENTS, record_wait=record_wait)
        self._pairing = Pairing(
            self._client,
            qr_png=qr_png,
            terminal=terminal if terminal is not None else sys.stderr,
            phone=pair_phone,
            timeout=pairing_timeout,
            emit=self._emit,
            fail=lambda message: self._emit(_Fatal(message)),
        )
        self._subscribe()

    # -- Transport --------------------------------------------------------

    def new_message_id(self) -> str | None:
        """None: neonize cannot send with a preset id."""
        return None

    async def run(self, deliver: Deliver, status: StatusSink) -> None:
        """Connect and deliver until cancelled; a fatal event ends it with a TransportError."""
        self._online = anyio.Event()
        self._pairing.restart()
        self._gate.open()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._supervise)
                tg.start_soon(self._pairing.watch, self._online)
                tg.start_soon(self._watch_silence)
                fatal = await self._hand_over(deliver, status)
                tg.cancel_scope.cancel()
        finally:
            self._gate.close()  # nobody hands facts over now: Go must not wait for that
            online = self._online
            if online is not None and not online.is_set():
                # Nothing reconnects once run() has ended: sends fail now, waiting ones too.
                self._online = None
                online.set()
        await self._stop_client()
        raise TransportError(fatal, retryable=False)

    async def send(self, message: Outgoing) -> SendReceipt:
        """Send plain text (so ``@digits`` stay text), or a voice note; a quote is built
        by hand."""
        to = self._jid(message.to)
        await self._until_online()
        try:
            if message.voice is not None:
                content = convert.voice_message(message, await self._upload(message.voice))
            else:
                content = convert.outgoing_message(message)
            response = await self._client.send_message(to, content)
        except NeonizeError as exc:
            raise _send_failure(exc) from exc
        sent_at = float(response.Timestamp) or self._clock()  # seconds, unlike inbound stamps
        # whatsmeow may deliver a phone-addressed send to the LID; it says where.
        delivered = convert.jid(response.Chat) if response.HasField("Chat") else None
        return SendReceipt(str(response.ID), sent_at, delivered)

    async def _upload(self, voice: Voice) -> Any:
        """The voice note's file, encrypted and uploaded to WhatsApp's media servers."""
        try:
            data = await anyio.to_thread.run_sync(Path(voice.path).read_bytes)
        except OSError as exc:
            raise TransportError(f"cannot read the voice note: {exc}", retryable=False) from None
        try:
            async with asyncio.timeout(self._upload_wait):
                return await self._client.upload(data, MediaType.MediaAudio)
        except TimeoutError:
            detail = f"the voice note was not uploaded within {self._upload_wait:g} s"
            raise TransportError(detail, retryable=True) from None

    async def typing(self, chat: str, on: bool) -> None:
        state = ChatPresence.CHAT_PRESENCE_COMPOSING if on else ChatPresence.CHAT_PRESENCE_PAUSED
        await self._courtesy(
            self._client.send_chat_presence(
                self._jid(chat), state, ChatPresenceMedia.CHAT_PRESENCE_MEDIA_TEXT
            )
        )
        if not on:
            # "composing" alone silences the owner's phone until this device goes unavailable.
            await self._courtesy(self._client.send_presence(Presence.UNAVAILABLE))

    async def mark_read(self, chat: str, ids: Sequence[str], sender: str | None) -> None:
        who = self._jid(sender) if sender else convert.empty_jid()
        await self._courtesy(
            self._client.mark_read(*ids, chat=self._jid(chat), sender=who, receipt=ReceiptType.READ)
        )

    async def aclose(self) -> None:
        """Stop the Go client and wait (bounded) for its connect task to end."""
        self._closed = True
        self._gate.close()
        self._items_in.close()
        self._items.close()
        await self._stop_client()

    def _jid(self, value: str) -> Any:
        if self._closed:
            raise TransportError("neonize transport is closed", retryable=False)
        try:
            return convert.jid_from_str(normalize(value))
        except InvalidJid as exc:
            raise TransportError(str(exc), retryable=False) from None

    async def _until_online(self) -> None:
        online = self._online
        with anyio.move_on_after(SEND_WAIT):
            if online is not None:
                await online.wait()
        if online is None or not online.is_set():
            raise TransportError("not connected to WhatsApp", retryable=True)

    async def _courtesy(self, call: Awaitable[Any]) -> None:
        """A presence or receipt: best effort, bounded, never an error for the caller."""
        with anyio.move_on_after(_COURTESY_WAIT):
            try:
                await call
            except Exception as exc:
                _log.debug("presence not sent", error=str(exc))

    # -- receiving ----------------------------------------------------------

    def _subscribe(self) -> None:
        """Register every handler: neonize forwards only types known before ``connect``."""
        self._client.qr(self._pairing.on_qr)
        # neonize binds its (no-op) login-status method as a Go callback at connect.
        self._client._NewAClient__onLoginStatus = self._pairing.on_login_status
        self._client.event(MessageEv)(self._on_message)
        self._client.event(UndecryptableMessageEv)(self._on_undecryptable)
        self._client.event(ReceiptEv)(self._on_receipt)
        self._client.event(PairStatusEv)(self._pairing.on_pair_status)
        for event_type, meaning in LIFECYCLE.items():
            self._client.event(event_type)(self._lifecycle_handler(meaning))

    async def _hand_over(self, deliver: Deliver, status: StatusSink) -> str:
        """Pass queued items on in order until a fatal one; returns its message."""
        with contextlib.suppress(anyio.ClosedResourceError):  # closed while running
            async for item in self._items:
                if isinstance(item, _Arrived):
                    try:
                        if await deliver(item.inbound):
                            self._kept(item)
                    finally:
                        if item.arrival is not None:
                            item.arrival.settle()  # recorded: the Go callback may return
                elif isinstance(item, TransportStatus):
                    await status(item)
                else:
                    return item.message
        return "neonize transport closed"

    def _kept(self, item: _Arrived) -> None:
        """The daemon kept the fact (a monitored chat's): what is written of it outside the log."""
        try:
            if item.kept is not None:
                item.kept()
            if self._capture is not None and item.arrival is not None:
                self._capture.write(item.arrival.event, item.inbound.received_at)
        except Exception as exc:  # the fact is recorded: a bug here must not stop intake
            _log.error("cannot finish a received message", error=type(exc).__name__)

    def _emit(self, item: _Item) -> None:
        with contextlib.suppress(anyio.ClosedResourceError):  # closed: shutting down
            self._items_in.send_nowait(item)

    def _emit_fact(self, inbound: Inbound, kept: Callable[[], None] | None = None) -> None:
        """Queue a fact for the daemon; the event's Go callback waits until it is recorded."""
        waiting = arrival.current()
        try:
            self._items_in.send_nowait(_Arrived(inbound, waiting, kept))
        except anyio.ClosedResourceError:
            return  # shutting down: closing released the Go callback (and loses this fact)
        if waiting is not None:
            waiting.queued = True

    async def _on_message(self, _client: Any, ev: Any) -> None:
        """Convert and queue; nothing of the message is logged, its chat may be unmonitored."""
        try:
            await self._take(ev)
        except Exception as exc:
            # neonize drops what a handler raises, unseen: one line says the message went.
            # The type and the line, not the message: it could quote a chat's id or text.
            where = traceback.extract_tb(exc.__traceback__)[-1]
            _log.error(
                "cannot read an incoming message",
                error=type(exc).__name__,
                at=f"{Path(where.filename).name}:{where.lineno}",
            )

    async def _take(self, ev: Any) -> None:
        fact = convert.inbound(ev, self._my_ids())
        if isinstance(fact, convert.Dropped):
            return
        fact = convert.with_secrets(fact, ev, self._secrets)
        if isinstance(fact, MessageReceived):
            fact = await self._with_phone_number(fact)
            kept = fact

            def remember() -> None:  # once the daemon kept it: never an unmonitored chat's
                convert.remember_secret(self._secrets, ev, kept)

            # Fetched later by the daemon, and only if the chat is monitored.
            download = download_for(self._client, ev.Message, fact.media)
            self._emit_fact(Inbound(fact, self._clock(), download), remember)
            return
        self._emit_fact(Inbound(fact, self._clock()))

    async def _on_undecryptable(self, _client: Any, ev: Any) -> None:
        """A message WhatsApp handed over without content (view-once, failed decryption)."""
        try:
            fact = convert.undecryptable(ev)
        except Exception as exc:
            _log.error("cannot read an undecryptable message", error=type(exc).__name__)
            return
        if not isinstance(fact, convert.Dropped):
            # Filed as a message from the same ids would be: the sender's number too.
            if _peer_unnamed(fact) and (pn := await self._phone_number(fact.chat)) is not None:
                fact = msgspec.structs.replace(fact, sender_alt=pn)
            self._emit_fact(Inbound(fact, self._clock()))

    async def _with_phone_number(self, fact: MessageReceived) -> MessageReceived:
        """A DM addressed by LID that came without the phone number (whatsmeow #1014):
        the number from whatsmeow's LID store, when it knows it."""
        if fact.is_group or fact.chat_alt is not None or not fact.chat.endswith("@lid"):
            return fact
        pn = await self._phone_number(fact.chat)
        if pn is None:
            return fact
        sender_alt = pn if _peer_unnamed(fact) else fact.sender_alt
        return msgspec.structs.replace(fact, chat_alt=pn, sender_alt=sender_alt)

    async def _phone_number(self, lid: str) -> str | None:
        """The phone JID whatsmeow's LID store holds for ``lid``; None: it knows none."""
        with anyio.move_on_after(_LID_WAIT):
            try:
                found = convert.jid(await self._client.get_pn_from_lid(convert.jid_from_str(lid)))
                return normalize(found) if found else None
            except Exception as exc:  # not known, or the store failed: the daemon decides
                _log.debug("no phone number for a LID", error=type(exc).__name__)
        return None

    async def _on_receipt(self, _client: Any, ev: Any) -> None:
        """Queue one fact per message the receipt names; the daemon keeps the bot's own."""
        try:
            facts = receipts(ev)
        except InvalidJid:
            return
        except Exception as exc:
            _log.error("cannot read a receipt", error=type(exc).__name__)
            return
        now = self._clock()
        for fact in facts:
            self._emit_fact(Inbound(fact, now))

    def _lifecycle_handler(
        self, meaning: Callable[[Any], Outcome]
    ) -> Callable[[Any, Any], Awaitable[None]]:
        async def handle(_client: Any, ev: Any) -> None:
            try:
                await self._apply(meaning(ev))
            except Exception:
                _log.exception("cannot handle a connection event")

        return handle

    async def _apply(self, outcome: Outcome) -> None:
        status = outcome.status
        if outcome.online is True:
            self._failures = 0
            self._offline_since = None
            if self._online is not None:
                self._online.set()
        elif outcome.online is False:
            self._offline()
        if status is not None:
            if status.state == "connected":
                status = self._with_my_ids(status)
            self._emit(status)
        if outcome.fatal is not None:
            self._emit(_Fatal(outcome.fatal))
        elif outcome.reconnect:
            self._restart(outcome.delay if outcome.delay is not None else self._next_delay())
        if outcome.online is True:
            # Connected: keep the owner's phone ringing (see the module docstring).
            await self._courtesy(self._client.send_presence(Presence.UNAVAILABLE))

    def _with_my_ids(self, status: TransportStatus) -> TransportStatus:
        """Connected, with the owner's ids: neonize sets ``me`` before this event runs."""
        if self._client.me is None:
            return status
        pn, lid = self._my_ids()
        return TransportStatus(state=status.state, detail=status.detail, me_pn=pn, me_lid=lid)

    def _my_ids(self) -> convert.Me:
        me = self._client.me
        if me is None:
            return convert.NOBODY
        pn = convert.jid(me.JID) if me.HasField("JID") else None
        lid = convert.jid(me.LID) if me.HasField("LID") else None
        return convert.Me(normalize(pn) if pn else None, normalize(lid) if lid else None)

    def _offline(self) -> None:
        """Sends wait again from now on (a set event would let them through)."""
        if self._offline_since is None:
            self._offline_since = self._clock()
        if self._online is not None and self._online.is_set():
            self._online = anyio.Event()

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
                self._resume_at = self._clock() + delay
            await self._stop_client()
            await anyio.sleep(delay or 0.0)

    async def _watch_silence(self) -> None:
        """Restart a connection that stayed down past the limit with no reconnect.

        A wait the transport chose (a temporary ban's expiry, a backoff) is no
        silence: the quiet counts from its end.
        """
        while True:
            await self._watch_tick()
            since = self._offline_since
            if since is None or self._pairing.started:
                continue
            now, resume = self._clock(), self._resume_at
            if resume is not None:
                if now < resume:
                    continue
                since = max(since, resume)
            quiet = now - since
            if quiet < self._silence_limit:
                continue
            detail = f"no connection for {quiet:.0f} s; reconnecting"
            self._emit(TransportStatus(state="disconnected", detail=detail))
            self._offline_since = self._clock()
            self._restart(0.0)

    def _restart(self, delay: float) -> None:
        self._reconnect_delay = delay
        self._resume_at = self._clock() + delay
        if self._wake is not None:
            self._wake.set()

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


def _peer_unnamed(fact: MessageReceived | MessageUndecryptable) -> bool:
    """A DM by LID, written by the peer, that came without their phone number."""
    return (
        not fact.is_group
        and not fact.from_me
        and fact.chat.endswith("@lid")
        and fact.sender == fact.chat
        and fact.sender_alt is None
    )


def _send_failure(exc: NeonizeError) -> TransportError:
    """A refused send with WhatsApp's code, if it gave one: a restriction (463, 479) is
    not worth trying again soon (peers found that resending makes it worse)."""
    found = _SERVER_ERROR.search(str(exc))
    code = int(found.group(1)) if found else None
    restricted = code is not None and code in RESTRICTED_CODES
    return TransportError(f"send failed: {exc}", retryable=not restricted, code=code)


def _ending(task: asyncio.Task[None]) -> str:
    """Why a connect task ended, in one line."""
    if task.cancelled():
        return "connection cancelled"
    error = task.exception()
    return str(error) if error is not None else "connection ended"
