"""WhatsApp replaced by JSON lines: messages in on stdin, sent replies out on stdout.

The contract is DESIGN.md section 7. stdout carries nothing but one ``sent``
object per send, so this module must never import neonize (its Go side prints
to stdout). A bad stdin line is reported in one log line and skipped.
"""

from __future__ import annotations

import os
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import CancelledError
from typing import BinaryIO

import anyio
import msgspec
from anyio.from_thread import run as run_from_thread
from anyio.lowlevel import EventLoopToken, current_token

from events.jid import InvalidJid, normalize
from events.model import TransportStatus
from pipeline.logs import get_logger
from pipeline.transport import _stdio_lines as lines
from pipeline.transport._base import (
    Deliver,
    Inbound,
    Outgoing,
    SendReceipt,
    StatusSink,
    TransportError,
)

_log = get_logger(__name__)

# Lines read ahead of the daemon; beyond that the reader thread waits, so a
# flood on stdin slows the writer instead of filling memory.
_READ_AHEAD = 64

Line = tuple[int, bytes]  # (line number, raw line)
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


_head_decoder = msgspec.json.Decoder(lines.Head)
_decoders = {kind: msgspec.json.Decoder(shape) for kind, shape in lines.LINES.items()}


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
        # The simulated WhatsApp connection, as the last status line set it.
        self._state = "connected"

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
        async for number, raw in self._lines:
            if raw == _END_OF_INPUT:
                _log.info("stdin closed; still sending until stopped")
                continue
            item = self._parse(number, raw)
            if isinstance(item, TransportStatus):
                self._state = item.state
                await status(item)
            elif item is not None:
                await deliver(item)

    async def send(self, message: Outgoing) -> SendReceipt:
        if self._closed:
            raise TransportError("stdio transport is closed", retryable=False)
        if self._state != "connected":
            # As WhatsApp would: nothing goes out while the connection is down.
            raise TransportError(f"not connected (status {self._state})", retryable=True)
        msg_id = message.wa_id or self.new_message_id()
        try:
            # Off the event loop: a reader that stops draining stdout must not stall intake.
            await anyio.to_thread.run_sync(self._write, lines.sent_line(message, msg_id))
        except (OSError, ValueError) as exc:  # ValueError: stdout already closed
            raise TransportError(f"cannot write to stdout: {exc}", retryable=False) from exc
        return SendReceipt(msg_id, self._clock())

    async def typing(self, chat: str, on: bool) -> None:
        await self._emit(lines.presence_line(chat, "composing" if on else "paused"))

    async def mark_read(self, chat: str, ids: Sequence[str], sender: str | None) -> None:
        await self._emit(lines.read_line(chat, ids))

    async def _emit(self, line: bytes) -> None:
        """A line that is no send: lost when stdout is gone, never an error."""
        if self._closed:
            return
        try:
            await anyio.to_thread.run_sync(self._write, line)
        except (OSError, ValueError) as exc:
            _log.warning("cannot write to stdout", error=str(exc))

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
            for number, raw in enumerate(_lines(fd), start=1):
                if raw.strip():
                    run_from_thread(self._line_sink.send, (number, raw), token=token)
            run_from_thread(self._line_sink.send, (number + 1, _END_OF_INPUT), token=token)
        except _NOBODY_LISTENING:
            pass
        except OSError as exc:
            _log.error("cannot read stdin", error=str(exc))
        finally:
            os.close(fd)

    def _parse(self, number: int, raw: bytes) -> Inbound | TransportStatus | None:
        kind = "line"
        try:
            kind = _head_decoder.decode(raw).type
            decoder = _decoders.get(kind)
            if decoder is None:
                _log.warning(f"stdin line {number}: unsupported type {kind!r}, skipped")
                return None
            line = decoder.decode(raw)
            if isinstance(line, lines.StatusLine):
                return lines.status(line)
            if isinstance(line, lines.EditLine):
                fact = lines.edit(line)
            elif isinstance(line, lines.RevokeLine):
                fact = lines.revoke(line)
            else:
                assert isinstance(line, lines.MessageLine)
                fact = lines.message(line, self.owner_jid, self._clock())
        except msgspec.ValidationError as exc:
            _log.warning(f"stdin line {number}: invalid {kind} ({exc}), skipped")
            return None
        except msgspec.DecodeError as exc:
            _log.warning(f"stdin line {number}: invalid JSON ({exc}), skipped")
            return None
        except InvalidJid as exc:
            _log.warning(f"stdin line {number}: {exc}, skipped")
            return None
        return Inbound(fact, self._clock())


def _lines(fd: int) -> Iterator[bytes]:
    """Lines of a file descriptor (the last one may lack its newline)."""
    pending = b""
    while chunk := os.read(fd, 65536):
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line + b"\n"
    if pending:
        yield pending
