"""compact and forget delete the attachments no remaining event refers to (real files, CLI)."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from events.backends import open_log
from events.model import ConfigLoaded, Media, MessageReceived
from events.testing import FakeClock
from events.units import DAY
from pipeline.media import MediaStore
from tests.test_maintenance import ALICE, BOB, CONFIG, NOW, cli


def stored(store: Path, content: bytes, *, days_ago: float, now: float = NOW) -> str:
    """A file in the store's media, as old as the message that brought it (``days_ago``
    before ``now``)."""
    media = MediaStore.of(store)
    media.directory.mkdir(mode=0o700, exist_ok=True)
    digest = hashlib.sha256(content).hexdigest()
    path = media.path(digest)
    path.write_bytes(content)
    when = now - days_ago * DAY
    os.utime(path, (when, when))
    return digest


def photo(chat: str, msg_id: str, digest: str) -> MessageReceived:
    media = Media(kind="image", mime="image/png", size=5, sha256=digest)
    return MessageReceived(chat=chat, msg_id=msg_id, sender=chat, kind="image", media=media)


def history(store: Path) -> dict[str, str]:
    files = {
        "old": stored(store, b"old photo", days_ago=20),
        "recent": stored(store, b"recent photo", days_ago=5),
        "bobs": stored(store, b"bob's photo", days_ago=5),
        "shared": stored(store, b"both sent it", days_ago=5),
        "orphan": stored(store, b"a crash left it", days_ago=20),
    }
    clock = FakeClock(NOW - 20 * DAY)
    log = open_log(store, clock=clock)
    log.append(ConfigLoaded(hash="c", config=CONFIG, path="app.json"))
    log.append(photo(ALICE, "M1", files["old"]))
    clock.advance(15 * DAY)
    log.append(photo(ALICE, "M2", files["recent"]), photo(ALICE, "M3", files["shared"]))
    log.append(photo(BOB, "M4", files["bobs"]), photo(BOB, "M5", files["shared"]))
    log.close()
    return files


def left(store: Path) -> set[str]:
    return set(os.listdir(MediaStore.of(store).directory))


def test_compact_deletes_the_files_of_rotated_events_and_orphans(tmp_path: Path) -> None:
    files = history(tmp_path)
    done = cli(tmp_path, "compact")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "removed 1 events older than 10 days; deleted 2 media files"
    assert left(tmp_path) == {files["recent"], files["bobs"], files["shared"]}


def test_forget_deletes_the_chats_own_files_at_once_and_keeps_shared_ones(tmp_path: Path) -> None:
    files = history(tmp_path)
    # A minute before now, not before NOW (the module's import): a slow run reaches this
    # test more than the grace period after its import.
    young = stored(tmp_path, b"arrived a minute ago", days_ago=0.0007, now=time.time())
    done = cli(tmp_path, "forget", "--chat", "Alice")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"forgot {ALICE}: 3 events removed; deleted 3 media files"
    # Alice's own (old, recent) and the orphan went; Bob still has his and the shared one;
    # a file younger than the grace period may be a message being recorded right now.
    assert left(tmp_path) == {files["bobs"], files["shared"], young}
