"""Offline stand-ins for the neonize transport tests: real protos, a fake Go side.

``FakeGo`` replaces neonize's FFI proxy (``client._NewAClient__client``), so
neonize's own Python code runs unchanged (``connect``, ``send_message``,
``PairPhone``, ``stop``) and only the Go calls are answered here.
``dispatch`` and ``show_qr_code`` feed events through neonize's real
callback entry points, as the Go side would from its own thread.
"""

from __future__ import annotations

import asyncio
import ctypes
from typing import Any

import anyio
from neonize.events import EVENT_TO_INT
from neonize.proto.Neonize_pb2 import (
    JID,
    MessageInfo,
    MessageSource,
    PairPhoneParams,
    PairPhoneReturnFunction,
    SendMessageReturnFunction,
    SendResponse,
)
from neonize.proto.Neonize_pb2 import Message as MessageEv
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message

from pipeline.transport.neonize._convert import jid_from_str

OWNER = "491700000000"
ALICE = "491701111111"
GROUP = "120363000000000000@g.us"
LID = "123456789012345"
SENT_ID = "3EB0SENT"
SENT_AT = 1_764_070_100


class FakeGo:
    """The Go functions neonize's async client calls, answered in-process."""

    def __init__(self) -> None:
        self.connects = 0
        self.stops = 0
        self.connect_errors: list[str] = []  # the next connects fail with these
        self.send_error = ""
        self.pair_error = ""
        self.pair_code = "ABCD-EFGH"
        self.sent: list[tuple[Any, Any]] = []  # (JID, Message) protos
        self.paired: list[str] = []  # phone numbers PairPhone was asked for
        self._session: asyncio.Event | None = None

    async def Neonize(self, *_: Any) -> bytes:
        """Fail with the next queued error, else block like a live session until Stop."""
        self.connects += 1
        if self.connect_errors:
            return self.connect_errors.pop(0).encode()
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
            reply = SendMessageReturnFunction(
                SendResponse=SendResponse(ID=SENT_ID, Timestamp=SENT_AT)
            )
        data: bytes = reply.SerializePartialToString()
        return data

    async def PairPhone(self, _uuid: bytes, payload: bytes, _n: int) -> bytes:
        self.paired.append(PairPhoneParams.FromString(payload).phone)
        if self.pair_error:
            reply = PairPhoneReturnFunction(Error=self.pair_error)
        else:
            reply = PairPhoneReturnFunction(Code=self.pair_code)
        data: bytes = reply.SerializePartialToString()
        return data


def message_ev(
    message: Any,
    *,
    chat: str = f"{ALICE}@s.whatsapp.net",
    sender: str | None = None,
    sender_alt: str = "",
    msg_id: str = "3EB0AA",
    timestamp_ms: int = 1_764_070_000_123,
    push_name: str = "Alice",
    from_me: bool = False,
) -> Any:
    """A ``MessageEv`` as whatsmeow encodes it; ``sender`` defaults to ``chat`` on device 3."""
    sender_jid = jid_from_str(sender or chat.replace("@", ":3@"))
    alt = (
        jid_from_str(sender_alt)
        if sender_alt
        else JID(User="", Server="", Device=0, RawAgent=0, Integrator=0, IsEmpty=True)
    )
    return MessageEv(
        Info=MessageInfo(
            ID=msg_id,
            Pushname=push_name,
            Timestamp=timestamp_ms,
            MessageSource=MessageSource(
                Chat=jid_from_str(chat),
                Sender=sender_jid,
                SenderAlt=alt,
                IsFromMe=from_me,
                IsGroup=chat.endswith("@g.us"),
            ),
        ),
        Message=message,
    )


async def dispatch(client: Any, event: Any) -> None:
    """Hand ``event`` to neonize's Go callback entry point, from another thread."""
    raw = event.SerializePartialToString()
    buffer = ctypes.create_string_buffer(raw, len(raw))
    code = EVENT_TO_INT[type(event)]
    await anyio.to_thread.run_sync(
        client.event.execute, 0, ctypes.addressof(buffer), len(raw), code
    )


async def show_qr_code(client: Any, code: bytes) -> None:
    """A QR code through neonize's Go QR callback, as whatsmeow emits one."""
    buffer = ctypes.create_string_buffer(code)
    on_qr = client._NewAClient__onQr
    await anyio.to_thread.run_sync(on_qr, 0, ctypes.addressof(buffer))
