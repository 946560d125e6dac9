"""WhatsApp replaced by JSON lines: messages in on stdin, sent replies out on stdout.

The contract is DESIGN.md section 7. stdout carries nothing but one ``sent``
object per send, so this module must never import neonize (its Go side prints
to stdout). A bad stdin line, whatever is wrong with it (not JSON, not UTF-8,
nested too deeply, longer than ``MAX_LINE_BYTES``), is reported in one log
line that quotes none of its content, and skipped.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError
from typing import Annotated, BinaryIO

import anyio
import msgspec
from anyio.from_thread import run as run_from_thread
from anyio.lowlevel import EventLoopToken, current_token

from events.jid import InvalidJid, normalize
from events.model import MessageKind, ReplyPurpose, TransportStatus
from pipeline.logs import get_logger
from pipeline.transport._base import (
    Deliver,
    Inbound,
    SendReceipt,
    StatusSink,
    TransportError,
    received_message,
)

_log = get_logger(__name__)

# A longer line is skipped unread, so no line can exhaust memory; a message's
# text is cut much shorter when the daemon records it (its MAX_TEXT_BYTES).
MAX_LINE_BYTES = 16 * 2**20
# Lines read ahead of the daemon; beyond that the reader thread waits, so a
# flood on stdin slows the writer instead of filling memory. A line of at
# least LARGE_LINE_BYTES is handed over alone: the reader waits until it is parsed.
_READ_AHEAD = 64
LARGE_LINE_BYTES = 64 * 1024
_CHUNK = 65536
# Senders stamp either unix seconds or (like WhatsApp) milliseconds.
_MILLIS_THRESHOLD = 1e12
# Warnings quote no content of a line: msgspec's own names a bad enum value.
_ENUM_VALUE = re.compile(r"Invalid enum value .*(?= - at `)", re.DOTALL)
_SHOWN = 32  # characters of an unsupported ``type`` shown

Line = tuple[int, bytes, anyio.Event | None]  # (line number, raw line, set once parsed)
_END_OF_INPUT = b""  # never a real line: blank lines are not handed over

# How a hand-off from the reader thread fails once the transport is closed or
# the event loop has ended (RuntimeError: "Event loop is closed").
_NOBODY_LISTENING = (
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.RunFinishedError,
    CancelledError,
    RuntimeError,
)


class _Head(msgspec.Struct):
    type: str = "message"


# WhatsApp's message ids are about 20 characters; one is part of the log's key.
_Id = Annotated[str, msgspec.Meta(max_length=256)]


class _MessageLine(msgspec.Struct, kw_only=True):
    chat: str
    text: str
    id: _Id | None = None
    sender: str | None = None
    from_me: bool = False
    timestamp: float | None = None
    push_name: str | None = None
    sender_alt: str | None = None
    kind: MessageKind = "text"
    quoted_id: _Id | None = None
    mentions: list[str] = []


class _SentLine(msgspec.Struct, tag_field="type", tag="sent"):
    id: str
    chat: str
    text: str
    reply_to: str | None
    purpose: ReplyPurpose


_head_decoder = msgspec.json.Decoder(_Head)
_message_decoder = msgspec.json.Decoder(_MessageLine)
_encoder = msgspec.json.Encoder()


class StdioTransport:
    """Messages from ``stdin`` (binary, one JSON object per line); sends to ``stdout``."""

    name = "stdio"

    def __init__(
        self,
        owner: str,
        *,
        stdin: BinaryIO | None = None,
        stdout: BinaryIO | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``owner`` is ``whatsapp.phone_number`` (or the owner's JID)."""
        self.owner_jid = normalize(owner)
        self._stdin = stdin if stdin is not None else sys.stdin.buffer
        self._stdout = stdout if stdout is not None else sys.stdout.buffer
        self._clock = clock
        self._line_sink, self._lines = anyio.create_memory_object_stream[Line](_READ_AHEAD)
        self._reader: threading.Thread | None = None
        self._write_lock = threading.Lock()
        self._closed = False

    def new_message_id(self) -> str:
        return "WB" + secrets.token_hex(10).upper()

    async def run(self, deliver: Deliver, status: StatusSink) -> None:
        """Deliver stdin messages until cancelled or closed; end of input only stops reading."""
        if self._reader is None:
            # A daemon thread, so a readline blocked forever never holds up exit.
            self._reader = threading.Thread(
                target=self._read_stdin,
                args=(os.dup(self._stdin.fileno()), current_token()),
                name="stdio-reader",
                daemon=True,
            )
            self._reader.start()
        await status(TransportStatus(state="connected", detail="stdio"))
        async for number, raw, parsed in self._lines:
            if raw == _END_OF_INPUT:
                _log.info("stdin closed; still sending until stopped")
                continue
            try:
                inbound = self._parse(number, raw)
            finally:
                del raw  # a large line's bytes go before the next one comes
                if parsed is not None:
                    parsed.set()
            if inbound is not None:
                await deliver(inbound)

    async def send(
        self,
        chat: str,
        text: str,
        *,
        wa_id: str | None,
        reply_to: str | None,
        purpose: ReplyPurpose,
    ) -> SendReceipt:
        if self._closed:
            raise TransportError("stdio transport is closed", retryable=False)
        msg_id = wa_id or self.new_message_id()
        line = _encoder.encode(_SentLine(msg_id, chat, text, reply_to, purpose)) + b"\n"
        try:
            # Off the event loop: a reader that stops draining stdout must not stall intake.
            await anyio.to_thread.run_sync(self._write, line)
        except (OSError, ValueError) as exc:  # ValueError: stdout already closed
            raise TransportError(f"cannot write to stdout: {exc}", retryable=False) from exc
        return SendReceipt(msg_id, self._clock())

    async def aclose(self) -> None:
        self._closed = True
        self._line_sink.close()
        self._lines.close()

    def _write(self, line: bytes) -> None:
        with self._write_lock:
            self._stdout.write(line)
            self._stdout.flush()

    def _read_stdin(self, fd: int, token: EventLoopToken) -> None:
        """Reader thread: hand non-blank lines, then ``_END_OF_INPUT``, to the event loop.

        It reads the file descriptor with ``os.read``: a daemon thread blocked
        inside a buffered stdin holds that buffer's lock, and Python aborts at
        shutdown when it cannot take it. ``fd`` is the thread's own duplicate,
        so closing the stdin file can never hand its number to another file
        under a pending read.
        """
        number = 0
        try:
            for number, raw in enumerate(_lines(fd, MAX_LINE_BYTES), start=1):
                if raw is None:
                    _log.warning(
                        f"stdin line {number}: longer than {MAX_LINE_BYTES // 2**20} MiB, skipped"
                    )
                elif raw and not raw.isspace():
                    run_from_thread(self._hand_over, number, raw, token=token)
            run_from_thread(self._line_sink.send, (number + 1, _END_OF_INPUT, None), token=token)
        except _NOBODY_LISTENING:
            pass
        except OSError as exc:
            _log.error("cannot read stdin", error=str(exc))
        finally:
            os.close(fd)

    async def _hand_over(self, number: int, raw: bytes) -> None:
        """Queue a line; a large one alone, so read-ahead never holds more than one."""
        if len(raw) < LARGE_LINE_BYTES:
            await self._line_sink.send((number, raw, None))
            return
        parsed = anyio.Event()
        await self._line_sink.send((number, raw, parsed))
        await parsed.wait()

    def _parse(self, number: int, raw: bytes) -> Inbound | None:
        try:
            kind = _head_decoder.decode(raw).type
            if kind != "message":
                shown = kind if len(kind) <= _SHOWN else kind[:_SHOWN] + "…"
                _log.warning(f"stdin line {number}: unsupported type {shown!r}, skipped")
                return None
            line = _message_decoder.decode(raw)
            inbound = self._inbound(line)
        except msgspec.ValidationError as exc:
            problem = _ENUM_VALUE.sub("invalid value", str(exc))
            _log.warning(f"stdin line {number}: invalid message ({problem}), skipped")
            return None
        except msgspec.DecodeError as exc:
            _log.warning(f"stdin line {number}: invalid JSON ({exc}), skipped")
            return None
        except UnicodeDecodeError:
            _log.warning(f"stdin line {number}: invalid JSON (not UTF-8 text), skipped")
            return None
        except RecursionError:
            _log.warning(f"stdin line {number}: invalid JSON (nested too deeply), skipped")
            return None
        except InvalidJid:
            # The field, not its value: the line may belong to a chat that is not monitored.
            field = _invalid_jid_field(line)
            _log.warning(f"stdin line {number}: {field} is not a WhatsApp JID, skipped")
            return None
        # Not logged here: the chat may be unmonitored, and then nothing of it is written.
        return inbound

    def _inbound(self, line: _MessageLine) -> Inbound:
        now = self._clock()
        stamp = line.timestamp
        if stamp is not None and stamp > _MILLIS_THRESHOLD:
            stamp /= 1000
        # The owner typed a from_me message, so the chat is the wrong default sender.
        sender = line.sender or (self.owner_jid if line.from_me else None)
        event = received_message(
            chat=line.chat,
            msg_id=line.id or uuid.uuid4().hex.upper(),
            text=line.text,
            sent_at=now if stamp is None else stamp,
            sender=sender,
            from_me=line.from_me,
            push_name=line.push_name,
            sender_alt=line.sender_alt,
            kind=line.kind,
            quoted_id=line.quoted_id,
            mentions=line.mentions,
        )
        return Inbound(event, now)


def _invalid_jid_field(line: _MessageLine) -> str:
    """The name of the first id on ``line`` that is not a JID or phone number."""
    ids = [("chat", line.chat), ("sender", line.sender), ("sender_alt", line.sender_alt)]
    ids += [(f"mentions[{n}]", jid) for n, jid in enumerate(line.mentions)]
    for name, value in ids:
        try:
            if value:
                normalize(value)
        except InvalidJid:
            return name
    return "an id"


def _lines(fd: int, limit: int) -> Iterator[bytes | None]:
    """Lines of a file descriptor (the last one may lack its newline).

    A line longer than ``limit`` bytes (newline not counted) is read past
    without being kept and comes out as None.
    """
    parts: list[bytes] = []
    size = 0
    too_long = False
    while chunk := os.read(fd, _CHUNK):
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start : end + 1]
            size += len(piece) - (end >= 0)
            too_long = too_long or size > limit
            if not too_long:
                parts.append(piece)
            if end < 0:
                break
            yield None if too_long else b"".join(parts)
            parts, size, too_long = [], 0, False
            start = end + 1
    if too_long:
        yield None
    elif parts:
        yield b"".join(parts)
