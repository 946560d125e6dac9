"""WhatsApp replaced by JSON lines: messages in on stdin, sent replies out on stdout.

The contract is docs/stdio.md. stdout carries nothing but one ``sent``
object per send, so this module must never import neonize (its Go side prints
to stdout). A bad stdin line, whatever is wrong with it (not JSON, not UTF-8,
nested too deeply, longer than ``MAX_LINE_BYTES``), is reported in one log
line that quotes none of its content, and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import select
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import CancelledError
from typing import BinaryIO, NamedTuple

import anyio
import msgspec
from anyio.from_thread import run as run_from_thread
from anyio.lowlevel import EventLoopToken, current_token

from events.jid import InvalidJid, normalize
from events.model import AccountRestricted, TransportStatus
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
from pipeline.transport._stdio_media import skim

_log = get_logger(__name__)

# A longer line is read past keeping only its ends, so no line can exhaust memory
# (a message whose ``media.data`` made it so long is recorded without the bytes:
# ``_stdio_media.skim``); a message's text is cut much shorter when the daemon
# records it (its MAX_TEXT_BYTES). A 16 MB attachment (media.max_mb's default)
# fits as base64 in ``media.data``.
MAX_LINE_BYTES = 24 * 2**20
_TOO_LONG = f"longer than {MAX_LINE_BYTES // 2**20} MiB"
# Lines read ahead of the daemon (plus what one read brought: they are handed
# over together); beyond that the reader thread waits, so a flood on stdin
# slows the writer instead of filling memory. A line of at
# least LARGE_LINE_BYTES is handed over alone: the reader waits until it is
# handled (an attachment in it stored), so one such line is in memory at a time.
_READ_AHEAD = 64
LARGE_LINE_BYTES = 64 * 1024
_CHUNK = 65536
_SKIM = 64 * 1024  # bytes kept of each end of a line too long to read (``_stdio_media.skim``)
# A write of at most this many bytes to a pipe that polls writable cannot block
# (Linux's PIPE_BUF): such a line is written on the event loop, no thread hand-off.
_ATOMIC = select.PIPE_BUF
# Warnings quote no content of a line: msgspec's own names a bad enum value.
_ENUM_VALUE = re.compile(r"Invalid enum value .*(?= - at `)", re.DOTALL)
_SHOWN = 32  # characters of an unsupported ``type`` shown

Line = tuple[int, bytes, anyio.Event | None]  # (line number, raw line, set once parsed)
_END_OF_INPUT = b""  # never a real line: blank lines are not handed over
_READ_ALL = b""  # from ``_lines``: the lines one read brought are out (never a line)

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
        # One permit a line in the stream: the reader takes it before handing the
        # line over, the loop gives it back on taking the line out, so a hand-over
        # never finds the stream full and need not wait for the loop to answer.
        self._room = threading.Semaphore(_READ_AHEAD)
        self._reader: threading.Thread | None = None
        self._write_lock = threading.Lock()
        self._writable = _poller(self._stdout)
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
                args=(os.dup(self._stdin.fileno()), current_token(), asyncio.get_running_loop()),
                name="stdio-reader",
                daemon=True,
            )
            self._reader.start()
        await status(TransportStatus(state="connected", detail="stdio"))
        async for number, raw, parsed in self._lines:
            self._room.release()
            if raw == _END_OF_INPUT:
                _log.info("stdin closed; still sending until stopped")
                continue
            try:
                item = self._parse(number, raw)
                del raw  # a large line's bytes go before the next one comes
                if isinstance(item, TransportStatus):
                    self._state = item.state
                    await status(item)
                elif isinstance(item, list):
                    for fact in item:  # a receipt line names several messages
                        await deliver(fact)
                elif isinstance(item, AccountRestricted):
                    await status(item)  # the daemon holds what it owes others
                elif item is not None:
                    await deliver(item)  # base64 media.data is read from the line itself
                del item
            finally:
                if parsed is not None:
                    parsed.set()

    async def send(self, message: Outgoing) -> SendReceipt:
        if self._closed:
            raise TransportError("stdio transport is closed", retryable=False)
        if self._state != "connected":
            # As WhatsApp would: nothing goes out while the connection is down.
            raise TransportError(f"not connected (status {self._state})", retryable=True)
        msg_id = message.wa_id or self.new_message_id()
        try:
            await self._out(lines.sent_line(message, msg_id))
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
            await self._out(line)
        except (OSError, ValueError) as exc:
            _log.warning("cannot write to stdout", error=str(exc))

    async def _out(self, line: bytes) -> None:
        """Write ``line`` now if that cannot block, else from a thread: a reader that
        stops draining stdout must not stall intake or the other chats."""
        if not self._write_now(line):
            await anyio.to_thread.run_sync(self._write, line)

    def _write_now(self, line: bytes) -> bool:
        """Write and flush ``line`` if no other write is under way and stdout can take
        it without blocking; False (nothing written) otherwise."""
        if self._writable is None or len(line) > _ATOMIC:
            return False
        if not self._write_lock.acquire(blocking=False):
            return False
        try:
            ready = self._writable.poll(0)
            if not ready or ready[0][1] != select.POLLOUT:  # full, or an error to raise in _write
                return False
            self._stdout.write(line)
            self._stdout.flush()
            return True
        finally:
            self._write_lock.release()

    async def aclose(self) -> None:
        self._closed = True
        self._line_sink.close()
        self._lines.close()

    def _write(self, line: bytes) -> None:
        with self._write_lock:
            self._stdout.write(line)
            self._stdout.flush()

    def _read_stdin(self, fd: int, token: EventLoopToken, loop: asyncio.AbstractEventLoop) -> None:
        """Reader thread: hand non-blank lines, then ``_END_OF_INPUT``, to the event loop.

        It reads the file descriptor with ``os.read``: a daemon thread blocked
        inside a buffered stdin holds that buffer's lock, and Python aborts at
        shutdown when it cannot take it. ``fd`` is the thread's own duplicate,
        so closing the stdin file can never hand its number to another file
        under a pending read.
        """
        number = 0
        small: list[tuple[int, bytes]] = []  # read, not yet handed over
        try:
            # Counted by hand: enumerate keeps its last (number, line) pair while the
            # next line is read, and a line may be 20 MB of base64.
            for raw in _lines(fd, MAX_LINE_BYTES):
                if raw == _READ_ALL:
                    # One hand-over for what one read brought, before the next read blocks.
                    self._hand_over_from_thread(small, loop)
                    continue
                number += 1
                if isinstance(raw, Overlong):
                    self._hand_over_overlong(number, raw, small, loop, token)
                elif raw.isspace():
                    pass
                elif len(raw) < LARGE_LINE_BYTES:
                    if not self._room.acquire(blocking=False):
                        self._hand_over_from_thread(small, loop)  # the loop frees room
                        self._take_room()
                    small.append((number, raw))
                else:
                    self._hand_over_from_thread(small, loop)
                    self._take_room()
                    run_from_thread(self._hand_over_large, number, raw, token=token)
                del raw  # not kept while the next line is read
            self._hand_over_from_thread(small, loop)
            self._take_room()
            run_from_thread(self._line_sink.send, (number + 1, _END_OF_INPUT, None), token=token)
        except _NOBODY_LISTENING:
            pass
        except OSError as exc:
            _log.error("cannot read stdin", error=str(exc))
        finally:
            os.close(fd)

    def _hand_over_overlong(
        self,
        number: int,
        long: Overlong,
        small: list[tuple[int, bytes]],
        loop: asyncio.AbstractEventLoop,
        token: EventLoopToken,
    ) -> None:
        """A line too long to keep, as ``skim`` rebuilt it: parsed alone, as a large line."""
        skimmed = skim(long.head, long.tail, long.size)
        if skimmed is None:
            _log.warning(f"stdin line {number}: {_TOO_LONG}, skipped")
            return
        self._hand_over_from_thread(small, loop)
        self._take_room()
        run_from_thread(self._hand_over_large, number, _Skimmed(skimmed), token=token)

    def _take_room(self) -> None:
        """Wait for a place in the stream (the reader thread), unless the transport closes."""
        while not self._room.acquire(timeout=1.0):
            if self._closed:
                raise anyio.ClosedResourceError

    def _hand_over_from_thread(
        self, small: list[tuple[int, bytes]], loop: asyncio.AbstractEventLoop
    ) -> None:
        """Queue ``small`` lines (each holding a place) in one call on the event loop,
        without waiting for it, and empty the list."""
        if small:
            loop.call_soon_threadsafe(self._hand_over, small[:])
            small.clear()

    def _hand_over(self, small: list[tuple[int, bytes]]) -> None:
        """Queue lines; each holds a place, so the stream has room for them."""
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            for number, raw in small:
                self._line_sink.send_nowait((number, raw, None))

    async def _hand_over_large(self, number: int, raw: bytes) -> None:
        """Queue a large line alone, so read-ahead never holds more than one."""
        parsed = anyio.Event()
        await self._line_sink.send((number, raw, parsed))
        await parsed.wait()

    def _parse(
        self, number: int, raw: bytes
    ) -> Inbound | list[Inbound] | TransportStatus | AccountRestricted | None:
        kind = "line"
        line: msgspec.Struct | None = None
        try:
            kind = _head_decoder.decode(raw).type
            decoder = _decoders.get(kind)
            if decoder is None:
                shown = kind if len(kind) <= _SHOWN else kind[:_SHOWN] + "…"
                _log.warning(f"stdin line {number}: unsupported type {shown!r}, skipped")
                return None
            line = decoder.decode(raw)
            if isinstance(raw, _Skimmed):
                if not lines.elided_media(line):
                    _log.warning(f"stdin line {number}: {_TOO_LONG}, skipped")
                    return None
                _log.warning(
                    f"stdin line {number}: {_TOO_LONG}, read without its media.data"
                    " (give such a file as media.path)"
                )
            if isinstance(line, lines.StatusLine):
                return lines.status(line)
            if isinstance(line, lines.ReceiptLine):
                now = self._clock()
                return [Inbound(fact, now) for fact in lines.receipts(line, now)]
            if isinstance(line, lines.EditLine):
                fact = lines.edit(line, self.owner_jid)
            elif isinstance(line, lines.RevokeLine):
                fact = lines.revoke(line)
            elif isinstance(line, lines.TimerLine):
                fact = lines.timer(line)
            elif isinstance(line, lines.UndecryptableLine):
                fact = lines.undecryptable(line, self.owner_jid, self._clock())
            else:
                assert isinstance(line, lines.MessageLine)
                message = lines.message(line, self.owner_jid, self._clock())
                return Inbound(message, self._clock(), lines.media_source(line))
        except msgspec.ValidationError as exc:
            problem = _ENUM_VALUE.sub("invalid value", str(exc))
            _log.warning(f"stdin line {number}: invalid {kind} ({problem}), skipped")
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
            field = lines.invalid_jid_field(line) if line is not None else "an id"
            _log.warning(f"stdin line {number}: {field} is not a WhatsApp JID, skipped")
            return None
        return Inbound(fact, self._clock())


def _poller(stdout: BinaryIO) -> select.poll | None:
    """A poll of ``stdout``'s pipe for room; None when it is no pipe (a file object
    without a descriptor, a regular file, a terminal): those are always written
    from a thread, as nothing tells whether a write would block."""
    try:
        fd = stdout.fileno()
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return None
    except (OSError, ValueError):
        return None
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return poller


class _Skimmed(bytes):
    """A line read past (``Overlong``) as ``skim`` rebuilt it, its longest string left out."""


class Overlong(NamedTuple):
    """A line longer than the limit, read past: its first and last bytes, its size."""

    head: bytes
    tail: bytes
    size: int


def _lines(fd: int, limit: int) -> Iterator[bytes | Overlong]:
    """Lines of a file descriptor (the last one may lack its newline), and
    ``_READ_ALL`` after the lines each read completed.

    A line longer than ``limit`` bytes (newline not counted) is read past,
    keeping only its first and last ``_SKIM`` bytes: it comes out as ``Overlong``.
    """
    parts: list[bytes] = []
    size = 0
    long: Overlong | None = None
    while chunk := os.read(fd, _CHUNK):
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start : end + 1]
            size += len(piece) - (end >= 0)
            if long is None and size > limit:
                head = b"".join(parts) + piece
                long, parts = Overlong(head[:_SKIM], head[-_SKIM:], 0), []
            elif long is not None:
                long = long._replace(tail=(long.tail + piece)[-_SKIM:])
            elif piece:
                parts.append(piece)
            if end < 0:
                break
            yield _joined(parts) if long is None else _ended(long, size)
            parts, size, long = [], 0, None
            start = end + 1
        yield _READ_ALL
    if long is not None:
        yield _ended(long, size)
    elif parts:
        yield b"".join(parts)


def _ended(long: Overlong, size: int) -> Overlong:
    return long._replace(tail=long.tail.removesuffix(b"\n"), size=size)


def _joined(parts: list[bytes]) -> bytes:
    """The line, its pieces let go: a generator paused on a line must not hold it twice."""
    line = b"".join(parts)
    parts.clear()
    return line
