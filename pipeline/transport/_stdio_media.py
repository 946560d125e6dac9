"""Where a stdio message's attachment comes from: a file (``media.path``) or the line
itself (``media.data``, base64). Read only when the daemon fetches it, in chunks,
off the event loop.

A path must name a regular file: anything else (a FIFO nobody writes to, a
device) could block the read forever, so it is refused at once.

A line too long to keep (``skim``) is read past, but its head and tail are
kept: when its one long string is ``media.data``, the message is recorded
with the rest of the line, and its attachment (``ElidedSource``) as one that
could not be read, as a file over ``media.max_mb`` would be.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
import stat
from pathlib import Path

import anyio.to_thread
import msgspec

from pipeline.media import MediaError, MediaSink

_CHUNK = 1 << 20  # bytes read (or base64 characters decoded) at a time
_ESCAPE = re.compile(rb"\\")
# A JSON string token, from its opening quote.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
# What stands for the string ``skim`` left out: no base64 and no line holds "!", and
# no line can guess this process's token, so only a skimmed line carries it.
_ELIDED = b"!elided-" + secrets.token_hex(8).encode() + b"-"
# What of base64 a kept end may hold (a writer may escape "/" and break lines as
# "\n"); the head may end inside an escape.
_BASE64 = re.compile(rb"(?:[A-Za-z0-9+/=]|\\[/nr])*")
_BASE64_HEAD = re.compile(rb"(?:[A-Za-z0-9+/=]|\\[/nr])*\\?")


class FileSource:
    """An attachment in a file the writer of stdin named."""

    def __init__(self, path: str) -> None:
        self._path = Path(path)

    @property
    def size(self) -> int | None:
        try:
            return os.stat(self._path).st_size
        except OSError:
            return None  # download says why

    @property
    def in_hand(self) -> bool:
        return False

    async def download(self, sink: MediaSink) -> None:
        # Abandoned when the daemon stops waiting: a slow disk must not hold it.
        await anyio.to_thread.run_sync(self._copy, sink, abandon_on_cancel=True)

    def _copy(self, sink: MediaSink) -> None:
        try:
            # Non-blocking: opening a FIFO without a writer would wait for one forever.
            fd = os.open(self._path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            raise self._unreadable(exc.strerror or str(exc)) from None
        with os.fdopen(fd, "rb") as file:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise self._unreadable("not a regular file")
            try:
                while chunk := file.read(_CHUNK):
                    sink.write(chunk)
            except OSError as exc:
                raise self._unreadable(exc.strerror or str(exc)) from None

    def _unreadable(self, reason: str) -> MediaError:
        return MediaError("download_failed", f"cannot read {self._path}: {reason}")


class InlineSource:
    """An attachment carried in the line as base64: ``data`` is its JSON string token."""

    def __init__(self, data: msgspec.Raw) -> None:
        self._data = data

    @property
    def size(self) -> int | None:
        return max(len(self._data) - 2, 0) * 3 // 4

    @property
    def in_hand(self) -> bool:
        return True

    async def download(self, sink: MediaSink) -> None:
        try:
            await anyio.to_thread.run_sync(self._decode, sink)
        finally:
            # Read once: let the line go now, though an idle worker thread still
            # holds this source (anyio keeps a worker's last job until its next).
            self._data = msgspec.Raw()

    def _decode(self, sink: MediaSink) -> None:
        text = memoryview(self._data)[1:-1]
        if _ESCAPE.search(text):  # a writer that escaped "/" as "\/": unescape first
            text = memoryview(msgspec.json.decode(self._data, type=str).encode("ascii", "replace"))
        step = _CHUNK - _CHUNK % 4  # whole base64 quanta, so each slice decodes alone
        try:
            for start in range(0, len(text), step):
                sink.write(base64.b64decode(text[start : start + step], validate=True))
        except (binascii.Error, ValueError):
            raise MediaError("corrupt", "media.data is not base64") from None


def skim(head: bytes, tail: bytes, size: int) -> bytes | None:
    """A line of ``size`` bytes, of which ``head`` and ``tail`` were kept, with the
    string running from one into the other standing for itself (``ElidedSource``);
    None when no string does (then nothing of the line can be read)."""
    opened = _open_string(head)
    closed = _closing_quote(tail)
    if opened is None or closed is None:
        return None
    # Both ends of one base64 string: else the head ended inside another long string,
    # or the tail began inside one after it (a long quote or caption), and the line
    # rebuilt would lose what lay between, the caption or the quote with it.
    if not _BASE64_HEAD.fullmatch(head, opened + 1) or not _BASE64.fullmatch(tail, 0, closed):
        return None
    left = size - opened - (len(tail) - closed) - 1  # the bytes between its quotes
    return head[:opened] + b'"' + _ELIDED + str(left).encode() + b'"' + tail[closed + 1 :]


def _open_string(head: bytes) -> int | None:
    """Where the string still open at the end of ``head`` starts (its quote)."""
    at = 0
    while (quote := head.find(b'"', at)) >= 0:
        token = _STRING.match(head, quote)
        if token is None:
            return quote
        at = token.end()
    return None


def _closing_quote(tail: bytes) -> int | None:
    """Where the string ``tail`` starts inside ends: its first unescaped quote."""
    at = 0
    while (quote := tail.find(b'"', at)) >= 0:
        escapes = len(tail[:quote]) - len(tail[:quote].rstrip(b"\\"))
        if escapes % 2 == 0:
            return quote
        at = quote + 1
    return None


def elided(data: msgspec.Raw) -> int | None:
    """How many characters of base64 ``skim`` left out of ``data``; None: it left none."""
    token = bytes(data)
    if not token.startswith(b'"' + _ELIDED):
        return None
    return int(token[len(_ELIDED) + 1 : -1])


class ElidedSource:
    """An attachment whose base64 made its line too long to read: never in hand."""

    def __init__(self, characters: int) -> None:
        self._characters = characters

    @property
    def size(self) -> int | None:
        return self._characters * 3 // 4  # over media.max_mb: not fetched at all

    @property
    def in_hand(self) -> bool:
        return False

    async def download(self, sink: MediaSink) -> None:
        raise MediaError(
            "download_failed",
            "its base64 was too long for a stdin line: give the file as media.path",
        )
