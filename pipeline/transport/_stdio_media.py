"""Where a stdio message's attachment comes from: a file (``media.path``) or the line
itself (``media.data``, base64). Read only when the daemon fetches it, in chunks,
off the event loop."""

from __future__ import annotations

import base64
import binascii
import os
import re
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

    async def download(self, sink: MediaSink) -> None:
        await anyio.to_thread.run_sync(self._copy, sink)

    def _copy(self, sink: MediaSink) -> None:
        try:
            with self._path.open("rb") as file:
                while chunk := file.read(_CHUNK):
                    sink.write(chunk)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise MediaError("download_failed", f"cannot read {self._path}: {reason}") from None


class InlineSource:
    """An attachment carried in the line as base64: ``data`` is its JSON string token."""

    def __init__(self, data: msgspec.Raw) -> None:
        self._data = data

    @property
    def size(self) -> int | None:
        return max(len(self._data) - 2, 0) * 3 // 4

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
