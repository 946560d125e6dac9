"""Attachments through the real daemon: a voice note's way to the transcription service,
and memory while many large documents arrive at once.

- Latency: a 1 MB voice note from the stdin line (``media.path``) to the
  transcription request arriving at a local fake service (intake fetches and
  hashes it into the store, the agent decides and uploads it), one at a time,
  p50/p99. Baseline: the same file uploaded straight from httpx to the same
  service, as the same multipart form.
- Memory: 20 chats each send a 16 MB document at the same moment; the daemon's
  peak RSS (VmHWM, reset just before) above its RSS before the burst. Files
  are fetched in arrival order, streamed to disk in 1 MB chunks, so what is in
  flight is one file: the target is 1.5x one file, never the 320 MB of all.
  Twice: files named by path (the target), and files carried inline as
  base64 (for information: the line itself then holds the file, 4/3 of its
  size, is read whole and parsed, so one line, not one file, is in flight).
"""

from __future__ import annotations

import base64
import json
import random
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.daemon import Daemon, TimedServer, app_config, user_jid
from bench.measure import percentile
from bench.report import Row
from bench.workspace import Workspace, progress
from tests.transcription_server import TEST_KEY, FakeTranscriptionServer

NAME = "media"
WARM_UP = 3
MB = 1024 * 1024
VOICE_BYTES = 1 * MB
DOCUMENT_BYTES = 16 * MB
CHATS = 20
PEAK_LIMIT = 1.5  # peak growth, in files in flight
TIMEOUT = 120.0


class TimedTranscriber(TimedServer, FakeTranscriptionServer):
    """The fake transcription service, noting when each request's body has arrived."""


def run(ws: Workspace) -> list[Row]:
    voices = max(ws.sizes.messages // 4, 10)
    rows = _voice_latency(ws, voices)
    for inline in (False, True):
        rows.append(_burst_memory(ws, inline=inline))
    return rows


def _voice_latency(ws: Workspace, count: int) -> list[Row]:
    progress(f"{NAME}: {count} voice notes of 1 MB, one at a time, through the daemon")
    folder = ws.scratch("media-voice")
    note = folder / "note.ogg"
    note.write_bytes(b"OggS" + random.Random(1).randbytes(VOICE_BYTES - 4))
    ours: list[float] = []
    with TimedServer() as llm, TimedTranscriber() as heard:
        env = {"TRANSCRIPTION_BASE_URL": f"{heard.base_url}/v1", "TRANSCRIPTION_API_KEY": TEST_KEY}
        with Daemon(folder, _config(1), llm, env) as daemon:
            for n in range(WARM_UP + count):
                seen = len(heard.arrivals())
                media = {"kind": "voice", "path": str(note), "seconds": 30}
                started = daemon.write(_line(f"V{n:05d}", user_jid(0), media))
                sent = daemon.next_sent(TIMEOUT)
                if sent.line.get("reply_to") != f"V{n:05d}":
                    raise RuntimeError(f"unexpected daemon output: {sent.line}")
                if n >= WARM_UP:
                    ours.append(heard.arrivals()[seen] - started)
            status = daemon.stop()
        direct = _direct_uploads(heard, note, count)
    note_text = f"{count} voice notes after {WARM_UP} warm-up"
    if status != 0:
        note_text += f"; daemon exit status {status}"
    return [
        Row(
            bench=NAME,
            measure=f"1 MB voice note: stdin -> transcription request p{q}",
            value=percentile(ours, q) * 1000,
            unit="ms",
            baseline=percentile(direct, q) * 1000,
            baseline_label="httpx multipart upload -> arrival",
            better="lower",
            note=note_text,
        )
        for q in (50, 99)
    ]


def _direct_uploads(heard: TimedTranscriber, note: Path, count: int) -> list[float]:
    """The same file and form straight from httpx, over a kept-alive connection."""
    spans = []
    form = {"model": "whisper-1", "response_format": "json"}
    headers = {"authorization": f"Bearer {TEST_KEY}"}
    with httpx.Client(base_url=heard.base_url, headers=headers) as client:
        for n in range(WARM_UP + count):
            seen = len(heard.arrivals())
            started = time.perf_counter()
            with note.open("rb") as audio:
                files = {"file": ("audio.ogg", audio, "audio/ogg")}
                client.post("/v1/audio/transcriptions", data=form, files=files).raise_for_status()
            if n >= WARM_UP:
                spans.append(heard.arrivals()[seen] - started)
    return spans


def _burst_memory(ws: Workspace, *, inline: bool) -> Row:
    how = "inline base64" if inline else "by path"
    progress(f"{NAME}: {CHATS} chats send a 16 MB document at once ({how})")
    folder = ws.scratch("media-inline" if inline else "media-path")
    files = []
    for n in range(CHATS):
        path = folder / f"archive{n}.zip"
        path.write_bytes(random.Random(n).randbytes(DOCUMENT_BYTES))
        files.append(path)
    config = _config(CHATS)
    with TimedServer() as llm, Daemon(folder, config, llm) as daemon:
        warm = daemon.write(_line("W0", user_jid(0), None, text="hello"))
        daemon.next_sent(TIMEOUT)
        del warm
        before = _status_mb(daemon.pid, "VmRSS")
        Path(f"/proc/{daemon.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
        lines = []
        for n, path in enumerate(files):
            media: dict[str, Any] = {"kind": "document", "file_name": path.name}
            if inline:
                media["data"] = base64.b64encode(path.read_bytes()).decode()
            else:
                media["path"] = str(path)
            lines.append(_line(f"D{n:03d}", user_jid(n), media))
        writer = threading.Thread(target=_write_all, args=(daemon, lines))
        writer.start()
        del lines  # the writer thread holds them; they are not the daemon's memory
        for _ in range(CHATS):
            daemon.next_sent(TIMEOUT)
        writer.join()
        peak = _status_mb(daemon.pid, "VmHWM")
        status = daemon.stop()
    for path in files:
        path.unlink()
    one = DOCUMENT_BYTES / MB
    line = len(base64.b64encode(b"x" * DOCUMENT_BYTES)) / MB
    note = (
        f"RSS before {before:.0f} MB, peak {peak:.0f} MB; {CHATS} x {one:.0f} MB = "
        f"{CHATS * one:.0f} MB sent"
    )
    if status != 0:
        note += f"; daemon exit status {status}"
    # Inline, the line is the file as base64: it is what is in flight, and it is read whole.
    return Row(
        bench=NAME,
        measure=f"peak RSS growth, {CHATS} x 16 MB documents at once ({how})",
        value=peak - before,
        unit="MB",
        baseline=line if inline else one,
        baseline_label="one line in flight" if inline else "one file in flight",
        target=None if inline else PEAK_LIMIT * one,
        better="lower",
        note=note + (f" as {CHATS} lines of {line:.1f} MB" if inline else ""),
    )


def _write_all(daemon: Daemon, lines: list[bytes]) -> None:
    for line in lines:
        daemon.write(line)


def _config(users: int) -> dict[str, Any]:
    config = app_config(users)
    config["media"] = {"max_mb": 20}
    return config


def _line(msg_id: str, chat: str, media: dict[str, Any] | None, text: str | None = None) -> bytes:
    line: dict[str, Any] = {"type": "message", "id": msg_id, "chat": chat}
    if media is not None:
        line["media"] = media
    if text is not None:
        line["text"] = text
    return json.dumps(line).encode() + b"\n"


def _status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for process {pid}")
