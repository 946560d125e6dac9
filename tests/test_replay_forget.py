"""forget and the replay files: one chat's experiments and cached answers go, the others' stay."""

from __future__ import annotations

from pathlib import Path

from pipeline.tools.replay import forget_replays
from pipeline.tools.replay._files import cache_folder, replace_private

ALICE = ("491701111111@s.whatsapp.net", "123456789@lid")  # one person, both ids
BOB = "491702222222@s.whatsapp.net"


def _store(replays: Path) -> dict[str, Path]:
    files = {
        "alice_pn": replays / "cache" / cache_folder(ALICE[0]) / "k1.json",
        "alice_lid": replays / "cache" / cache_folder(ALICE[1]) / "k2.json",
        "bob": replays / "cache" / cache_folder(BOB) / "k3.json",
        "legacy": replays / "cache" / "k0.json",  # an older version's flat entry
        "alice_run": replays / "20261129T080000Z-alice.json",
        "alice_report": replays / "20261129T080000Z-alice.html",
        "bob_run": replays / "20261129T090000Z-bob.json",
    }
    for name, path in files.items():
        chat = BOB if name.startswith("bob") else ALICE[0]
        replace_private(path, f'{{"chat": "{chat}", "text": "..."}}'.encode())
    return files


def test_forget_removes_the_persons_cache_folders_and_experiments_only(tmp_path: Path) -> None:
    files = _store(tmp_path / "replays")

    gone = forget_replays(tmp_path / "replays", ALICE)

    assert gone == 5
    left = {name for name, path in files.items() if path.exists()}
    assert left == {"bob", "bob_run"}
    assert sorted(p.name for p in (tmp_path / "replays" / "cache").iterdir()) == [cache_folder(BOB)]


def test_a_cache_folder_names_no_number() -> None:
    assert "491701111111" not in cache_folder(ALICE[0])
    assert cache_folder(ALICE[0]) != cache_folder(ALICE[1])
