"""Where a stdio message's attachment comes from: a file (``media.path``) or the line
itself (``media.data``, base64). Read only when the daemon fetches it, in chunks,
off the event loop.

A path must name a regular file: anything else (a FIFO nobody writes to, a
device) could block the read forever, so it is refused at once.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import stat
from pathlib import Path

import anyio.to_thread
import msgspec

from pipeline.media import MediaError, MediaSink

_CHUNK = 1 << 20  # bytes read (or base64 characters decoded) at a time
_ESCAPE = re.compile(rb"\\")


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
