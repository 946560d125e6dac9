"""Offline stand-ins for the neonize transport tests: real protos, a fake Go side.

``FakeGo`` replaces neonize's FFI proxy (``client._NewAClient__client``), so
neonize's own Python code runs unchanged (``connect``, ``send_message``,
``send_chat_presence``, ``mark_read``, ``PairPhone``, ``stop``) and only the
Go calls are answered here, recorded in the order they came. It can also
behave as the real library does at its worst: a connect that never returns,
even after ``Stop`` (whatsmeow's QR loop), and calls that take seconds. It keeps
the login-status callback neonize passes to ``Neonize`` and calls it from a
thread, as goneonize's QR loop does (``login_status``).

``dispatch`` and ``show_qr_code`` feed events through neonize's real callback
entry points, as the Go side would from its own thread. ``message_ev`` builds
a ``MessageEv`` with every required field set, in the shapes whatsmeow emits
(checked by serialising it in full, not partially).
"""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import io
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from neonize.events import EVENT_TO_INT
from neonize.proto.Neonize_pb2 import (
    JID,
    Connected,
    Device,
    DownloadReturnFunction,
    GetJIDFromStoreReturnFunction,
    MessageInfo,
    MessageSource,
    PairPhoneParams,
    PairPhoneReturnFunction,
    SendMessageReturnFunction,
    SendResponse,
    UploadResponse,
    UploadReturnFunction,
)
from neonize.proto.Neonize_pb2 import Message as MessageEv
from neonize.proto.waCommon.WACommon_pb2 import MessageKey
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import (
    Message,
    ProtocolMessage,
    SecretEncryptedMessage,
)

from events.model import AccountRestricted, TransportStatus
from pipeline.transport import Fact, Inbound, TransportError
from pipeline.transport.neonize import NeonizeTransport
from pipeline.transport.neonize._convert import jid_from_str
from pipeline.transport.neonize._secret import edit_key

OWNER = "491700000000"
OWNER_LID = "987654321098765"
ALICE = "491701111111"
GROUP = "120363000000000000@g.us"
# An attachment's download keys, as WhatsApp sends them with every media message.
MEDIA_KEYS = {
    "URL": "https://mmg.whatsapp.net/v/t62.7117-24/1.enc",
    "directPath": "/v/t62.7117-24/1.enc",
    "mediaKey": b"k" * 32,
    "fileSHA256": b"s" * 32,
    "fileEncSHA256": b"e" * 32,
}
LID = "123456789012345"
ALICE_LID = f"{LID}@lid"
SENT_ID = "3EB0SENT"
SENT_AT = 1_764_070_100
WAIT = 10.0  # a bound on waiting for evidence, never a sleep


class FakeGo:
    """The Go functions neonize's async client calls, answered in-process."""

    def __init__(self) -> None:
        self.connects = 0
        self.stops = 0
        self.connect_errors: list[str] = []  # the next connects fail with these
        self.hang = False  # connects never return, Stop or not (whatsmeow's QR loop)
        self.send_error = ""
        self.sent_chat: str | None = None  # SendResponse.Chat, as whatsmeow 2026-09 fills it
        self.pair_error = ""
        self.pair_code = "ABCD-EFGH"
        self.sent: list[tuple[Any, Any]] = []  # (JID, Message) protos
        self.paired: list[str] = []  # phone numbers PairPhone was asked for
        # Presence and receipts in call order: ("chat", user, state) | ("global", b"...")
        # | ("read", ids, chat user, sender user).
        self.calls: list[tuple[Any, ...]] = []
        self.downloads: list[Any] = []  # the Message protos DownloadAny was asked for
        self.uploads: list[tuple[bytes, int]] = []  # (bytes, whatsmeow MediaType) uploaded
        self.upload_error = ""
        self.upload_hang = False  # uploads never return (whatsmeow's media client has no timeout)
        self.download_data = b"OggS" + bytes(range(256)) * 8
        self.download_error = ""  # whatsmeow's error text, as DownloadAny returns it
        self.download_hang = False  # downloads never return (a dead media connection)
        # whatsmeow_lid_map: LID user -> phone number, as GetPNFromLID reads it.
        self.lid_map: dict[str, str] = {}
        self.lid_lookups: list[str] = []  # the LID users GetPNFromLID was asked for
        self.lid_hang = False  # lookups never return (a session database that is locked)
        self._session: asyncio.Event | None = None
        self._login_status: Any = None

    async def login_status(self, name: str) -> None:
        """A QR channel event that is no code (whatsmeow qrchan.go: ``passkey-request``,
        ``error``, ``success``…), by name, as goneonize's QR loop hands it to the login
        callback: a C string, from a Go thread."""
        assert self._login_status is not None, "not connected"
        buffer = ctypes.create_string_buffer(name.encode())
        await anyio.to_thread.run_sync(self._login_status, None, ctypes.addressof(buffer))

    async def Neonize(self, *args: Any) -> bytes:
        """Fail with the next queued error, else block like a live session until Stop."""
        self.connects += 1
        self._login_status = args[7]  # neonize's login-status callback (a ctypes function)
        if self.connect_errors:
            return self.connect_errors.pop(0).encode()
        if self.hang:
            await asyncio.Event().wait()  # nothing ever sets it
        self._session = asyncio.Event()
        await self._session.wait()
        return b""

    async def Stop(self, _uuid: bytes) -> None:
        self.stops += 1
        if self._session is not None:
            self._session.set()

    async def SendMessage(self, _uuid: bytes, to: bytes, _n: int, msg: bytes, _m: int) -> bytes:
        self.sent.append((JID.FromString(to), Message.FromString(msg)))
        if self.send_error:
            reply = SendMessageReturnFunction(Error=self.send_error)
        else:
            response = SendResponse(ID=SENT_ID, Timestamp=SENT_AT)
            if self.sent_chat:
                response.Chat.CopyFrom(jid_from_str(self.sent_chat))
            reply = SendMessageReturnFunction(SendResponse=response)
        data: bytes = reply.SerializePartialToString()
        return data

    async def SendChatPresence(
        self, _uuid: bytes, jid: bytes, _n: int, state: int, _m: int
    ) -> bytes:
        self.calls.append(("chat", JID.FromString(jid).User, state))
        return b""

    async def SendPresence(self, _uuid: bytes, presence: bytes) -> bytes:
        self.calls.append(("global", presence))
        return b""

    async def MarkRead(self, _uuid: bytes, ids: bytes, _ts: int, chat: bytes, _cn: int,
                       sender: bytes, _sn: int, receipt: bytes) -> bytes:  # fmt: skip
        who = JID.FromString(sender).User
        self.calls.append(("read", ids.decode().split(" "), JID.FromString(chat).User, who))
        return b""

    async def Upload(self, _uuid: bytes, data: bytes, _n: int, media_type: int) -> bytes:
        """whatsmeow's Upload: encrypts and uploads, answering where the file now is."""
        self.uploads.append((data, media_type))
        if self.upload_hang:
            await asyncio.Event().wait()
        if self.upload_error:
            reply = UploadReturnFunction(Error=self.upload_error)
        else:
            digest = hashlib.sha256(data).digest()
            response = UploadResponse(
                url=f"https://mmg.whatsapp.net/v/t62.7117-24/{digest.hex()[:16]}.enc",
                DirectPath=f"/v/t62.7117-24/{digest.hex()[:16]}.enc",
                Handle="",
                MediaKey=bytes(32),
                FileEncSHA256=hashlib.sha256(b"enc" + data).digest(),
                FileSHA256=digest,
                FileLength=len(data),
            )
            reply = UploadReturnFunction(UploadResponse=response)
        out: bytes = reply.SerializeToString()
        return out

    async def DownloadAny(self, _uuid: bytes, msg: bytes, _n: int) -> bytes:
        """whatsmeow's DownloadAny: the decrypted bytes, or its error, serialised."""
        self.downloads.append(Message.FromString(msg))
        if self.download_hang:
            await asyncio.Event().wait()  # nothing ever sets it
        if self.download_error:
            reply = DownloadReturnFunction(Error=self.download_error)
        else:
            reply = DownloadReturnFunction(Binary=self.download_data)
        data: bytes = reply.SerializeToString()
        return data

    async def GetPNFromLID(self, _uuid: bytes, jid: bytes, _n: int) -> bytes:
        """whatsmeow's LID store: the phone JID, or an empty JID when it knows none."""
        lid = JID.FromString(jid).User
        self.lid_lookups.append(lid)
        if self.lid_hang:
            await asyncio.Event().wait()  # nothing ever sets it
        pn = self.lid_map.get(lid)
        found = jid_from_str(f"{pn}@s.whatsapp.net") if pn else empty_jid()
        data: bytes = GetJIDFromStoreReturnFunction(Jid=found).SerializeToString()
        return data

    async def PairPhone(self, _uuid: bytes, payload: bytes, _n: int) -> bytes:
        self.paired.append(PairPhoneParams.FromString(payload).phone)
        if self.pair_error:
            reply = PairPhoneReturnFunction(Error=self.pair_error)
        else:
            reply = PairPhoneReturnFunction(Code=self.pair_code)
        data: bytes = reply.SerializePartialToString()
        return data


def empty_jid() -> Any:
    return JID(User="", Server="", Device=0, RawAgent=0, Integrator=0, IsEmpty=True)


def _jid(value: str) -> Any:
    return jid_from_str(value) if value else empty_jid()


def message_ev(
    message: Any,
    *,
    chat: str = f"{ALICE}@s.whatsapp.net",
    sender: str | None = None,
    sender_alt: str = "",
    recipient_alt: str = "",
    is_group: bool | None = None,
    msg_id: str = "3EB0AA",
    timestamp_ms: int = 1_764_070_000_123,
    push_name: str = "Alice",
    from_me: bool = False,
    edit: str = "",
    ephemeral: bool = False,
    view_once: bool = False,
) -> Any:
    """A ``MessageEv`` as whatsmeow encodes it; ``sender`` defaults to ``chat`` on device 3.

    Every required field is set, and the event is serialised in full to prove it.
    """
    group = chat.endswith(("@g.us", "@broadcast")) if is_group is None else is_group
    ev = MessageEv(
        Info=MessageInfo(
            ID=msg_id,
            ServerID=0,
            Type="text" if message.HasField("conversation") else "media",
            Pushname=push_name,
            Timestamp=timestamp_ms,
            Category="",
            Multicast=False,
            MediaType="",
            Edit=edit,
            MessageSource=MessageSource(
                Chat=jid_from_str(chat),
                Sender=jid_from_str(sender or chat.replace("@", ":3@")),
                IsFromMe=from_me,
                IsGroup=group,
                SenderAlt=_jid(sender_alt),
                RecipientAlt=_jid(recipient_alt),
                BroadcastListOwner=empty_jid(),
            ),
        ),
        Message=message,
        IsEphemeral=ephemeral,
        IsViewOnce=view_once,
        IsViewOnceV2=view_once,
        IsViewOnceV2Extension=False,
        IsDocumentWithCaption=False,
        IsLottieSticker=False,
        IsEdit=edit == "1",
        UnavailableRequestID="",
        RetryCount=0,
    )
    ev.SerializeToString()  # raises if a required field is missing
    return ev


def device(pn: str, lid: str | None) -> Any:
    """The ``Device`` neonize sets as ``client.me`` before the first ConnectedEv runs."""
    me = Device(
        JID=jid_from_str(f"{pn}:12@s.whatsapp.net"),
        LID=jid_from_str(f"{lid}:12@lid") if lid else empty_jid(),
        Platform="",
        BussinessName="",
        PushName="Owner",
        Initialized=True,
    )
    me.SerializeToString()
    return me


def execute(client: Any, event: Any) -> None:
    """Hand ``event`` to neonize's Go callback entry point, blocking this thread as Go's."""
    execute_raw(client, event.SerializePartialToString(), type(event))


def execute_raw(client: Any, raw: bytes, event_type: type[Any]) -> None:
    """Hand an event's bytes as Go encoded them (Python's protobuf may not build them)."""
    buffer = ctypes.create_string_buffer(raw, len(raw))
    client.event.execute(0, ctypes.addressof(buffer), len(raw), EVENT_TO_INT[event_type])


async def dispatch(client: Any, event: Any) -> None:
    """Hand ``event`` to neonize's Go callback entry point, from another thread."""
    await anyio.to_thread.run_sync(execute, client, event)


async def show_qr_code(client: Any, code: bytes) -> None:
    """A QR code through neonize's Go QR callback, as whatsmeow emits one."""
    buffer = ctypes.create_string_buffer(code)
    on_qr = client._NewAClient__onQr
    await anyio.to_thread.run_sync(on_qr, 0, ctypes.addressof(buffer))


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
            await self.transport.run(self._deliver, self._report)
        except TransportError as exc:
            self.error = exc
        finally:
            self.ended.set()

    async def _deliver(self, inbound: Inbound) -> bool:
        """As the daemon's intake for a monitored chat: taken, so recorded."""
        await self._inbound_in.send(inbound)
        return True

    async def _report(self, status: TransportStatus | AccountRestricted) -> None:
        assert isinstance(status, TransportStatus)  # neonize forwards no restriction
        await self._status_in.send(status)

    async def next_fact(self) -> Fact:
        with anyio.fail_after(WAIT):
            return (await self._inbound.receive()).event

    async def next_message(self) -> Any:
        """The next fact, which must be a ``MessageReceived``."""
        fact = await self.next_fact()
        assert type(fact).__name__ == "MessageReceived", fact
        return fact

    async def next_status(self) -> TransportStatus:
        with anyio.fail_after(WAIT):
            return await self._status.receive()

    async def statuses(self, count: int) -> list[tuple[str, str]]:
        return [(s.state, s.detail) for s in [await self.next_status() for _ in range(count)]]

    async def connected(self, me: Any = None) -> TransportStatus:
        """Connect, optionally teaching the owner's ids first; returns the connected status."""
        if me is not None:
            await dispatch(self.client, me)
        await dispatch(self.client, Connected(status=True))
        assert await self.statuses(1) == [("connecting", "")]
        status = await self.next_status()
        assert status.state == "connected"
        return status

    def close(self) -> None:
        for stream in (self._inbound_in, self._inbound, self._status_in, self._status):
            stream.close()

    async def end(self) -> TransportError:
        with anyio.fail_after(WAIT):
            await self.ended.wait()
        assert self.error is not None
        return self.error


def transport_factory(tmp_path: Path) -> Any:
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


async def received(make_transport: Any, *events: Any) -> list[Any]:
    """The facts the transport delivers for ``events``, then a marker message."""
    async with running(*make_transport()) as session:
        await session.connected()
        for ev in events:
            await dispatch(session.client, ev)
        await dispatch(session.client, message_ev(Message(conversation="end"), msg_id="END"))
        facts: list[Any] = []
        while True:
            fact = await session.next_fact()
            if getattr(fact, "msg_id", None) == "END":
                return facts
            facts.append(fact)


def secret_edit(secret: bytes, text: str, *, sender: str, editor: str) -> Any:
    """An edit as a current phone sends it: AES-GCM under the original's message secret."""
    plain = Message(
        protocolMessage=ProtocolMessage(
            key=MessageKey(remoteJID=ALICE_LID, ID="3EB0ORIG"),
            type=ProtocolMessage.MESSAGE_EDIT,
            editedMessage=Message(conversation=text),
        )
    ).SerializeToString()
    iv = os.urandom(12)
    payload = AESGCM(edit_key(secret, "3EB0ORIG", sender, editor)).encrypt(iv, plain, None)
    return Message(
        secretEncryptedMessage=SecretEncryptedMessage(
            targetMessageKey=MessageKey(remoteJID=ALICE_LID, fromMe=False, ID="3EB0ORIG"),
            encPayload=payload,
            encIV=iv,
            secretEncType=SecretEncryptedMessage.MESSAGE_EDIT,
        )
    )
