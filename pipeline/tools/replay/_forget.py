"""What ``forget --chat X`` does under ``STORE/replays/``: no word of X stays.

- An experiment of X alone goes (its ``.json``, and an ``.html`` beside it).
- A run across chats keeps the other chats' turns: X's turns are taken out
  of its ``.json``, which says so (``forgotten``: the chats and how many turns),
  and its page is rendered again from it; when no other chat's turn is left,
  both files go. Its figures (counts, costs, the judge's verdicts) were
  computed with X's turns and still count them: a figure carries no words, and
  computing it again would take the run again. ``chats`` still names X, so
  ``apply`` changes the same entities as before.
- X's folder of the response cache goes (replayed and judge answers alike).
  Entries an older version wrote straight into ``cache/`` do not say which
  chat they answered: they all go (a later replay asks again).
- A ``.json`` that is not an experiment replay.py could have written goes
  when its bytes name X.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Collection
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from pipeline.tools.replay._files import cache_folder, replace_private
from pipeline.tools.replay._html import report_html
from pipeline.tools.replay._saved import read_doc


class Cleared(NamedTuple):
    deleted: int  # files: experiments, their pages, cached answers
    rewritten: int  # runs across chats the chats' turns were taken out of


def forget_replays(replays: Path, chats: Collection[str]) -> Cleared:
    """Take ``chats`` (one person's ids) out of ``replays``; what was deleted and rewritten."""
    if not replays.is_dir() or not chats:
        return Cleared(0, 0)
    ids = frozenset(chats)
    doomed: set[Path] = set()
    rewritten = 0
    for path in replays.glob("*.json"):
        try:
            left = _without(path.read_bytes(), ids)
        except OSError:
            continue
        if left is True:
            doomed.update((path, path.with_suffix(".html")))
        elif isinstance(left, bytes):
            _rewrite(path, left)
            rewritten += 1
    doomed.update(_cached(replays / "cache", ids))
    deleted = 0
    for path in doomed:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            deleted += 1
    for chat in ids:
        shutil.rmtree(replays / "cache" / cache_folder(chat), ignore_errors=True)
    return Cleared(deleted, rewritten)


def _without(data: bytes, ids: frozenset[str]) -> bytes | bool:
    """The file with ``ids``' turns taken out; True: delete it whole; False: leave it be."""
    try:
        doc = read_doc(data)
        raw: dict[str, Any] = msgspec.json.decode(data)
    except msgspec.DecodeError:
        return any(chat.encode() in data for chat in ids)  # not ours to read
    if not doc.chats:
        return doc.chat in ids
    theirs = [t.chat in ids for t in doc.turns]
    if not any(theirs):
        return False
    if all(theirs):
        return True
    before = doc.forgotten
    raw["turns"] = [t for t, gone in zip(raw["turns"], theirs, strict=True) if not gone]
    raw["forgotten"] = {
        "chats": sorted({*(before.chats if before else ()), *(ids & set(doc.chats))}),
        "turns": (before.turns if before else 0) + sum(theirs),
    }
    return msgspec.json.format(msgspec.json.encode(raw), indent=2)


def _rewrite(path: Path, data: bytes) -> None:
    """The experiment, and its page again if it has one (written from the file)."""
    replace_private(path, data)
    page = path.with_suffix(".html")
    if page.is_file():
        replace_private(page, report_html(read_doc(data)).encode())


def _cached(cache: Path, ids: frozenset[str]) -> list[Path]:
    if not cache.is_dir():
        return []
    found = [p for p in cache.iterdir() if p.is_file()]  # an older version's, of any chat
    for chat in ids:
        folder = cache / cache_folder(chat)
        if folder.is_dir():
            found += [p for p in folder.iterdir() if p.is_file()]
    return found
