"""A PDF read in a child process, killed at a deadline: a small file can cost hours.

A content stream of a few hundred KB can inflate to tens of MB, and pypdf's
text extraction costs time quadratic in it (10 MB: about 100 s, 75 MB, its own
cap: about an hour); ``max_chars`` is only looked at between pages. A thread
cannot be stopped, so the PDF is read by ``python -m pipeline.media._read_child``:
it gets ``seconds`` of wall time (then it is killed, and the sender hears the
document takes too long to read), as much CPU time as a backstop should the
daemon die meanwhile, and 1 GiB of address space. It costs a
Python start and pypdf's import per PDF, about 0.15 s. Text files, read in a
bounded number of bytes, stay in the daemon.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import anyio
import anyio.to_thread

import pipeline
from pipeline.media._documents import DocumentText, Unreadable, read_document
from pipeline.media._formats import DocumentType

# How long a PDF may take to read (wall time): a phone's scan of 50 pages takes ~1 s.
DEADLINE_SECONDS = 30.0
_CHILD = "pipeline.media._read_child"
# The project's root, so the child imports this same code wherever the daemon runs from.
_ROOT = str(Path(pipeline.__file__).resolve().parents[1])


async def read_apart(
    path: Path, kind: DocumentType, max_chars: int, *, seconds: float
) -> DocumentText:
    """``read_document`` in a child process given ``seconds``; a text file in-process."""
    if kind != "pdf":
        return await anyio.to_thread.run_sync(read_document, path, kind, max_chars)
    command = [sys.executable, "-m", _CHILD, str(path), kind, str(max_chars), str(seconds)]
    paths = [_ROOT, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    done = None
    try:
        with anyio.move_on_after(seconds):  # the child is killed when this cancels it
            done = await anyio.run_process(command, env=env, check=False)
    except OSError as exc:  # not "the file is gone": the reader could not start
        raise RuntimeError(f"the PDF reader did not start: {exc}") from None
    if done is None:
        raise Unreadable("it takes too long to read", f"not read within {seconds:g} s")
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        error = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"the PDF reader ended with {done.returncode}: {error[0]}") from None
    if "unreadable" in answer:
        raise Unreadable(answer["unreadable"], answer["detail"])
    if "gone" in answer:
        raise FileNotFoundError(answer["gone"])
    if "error" in answer:
        raise RuntimeError(f"the PDF reader failed: {answer['error']}")
    return DocumentText(answer["text"], answer["pages"], answer["cut"])
