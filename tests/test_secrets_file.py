"""The file of message secrets kept for edits (issue 18.7): what a crash leaves is read,
old lines go, and it never grows past twice what is still young."""

from __future__ import annotations

import stat
from pathlib import Path

from events.testing import FakeClock
from pipeline.transport import SecretsFile, forget_secrets

ALICE = "491701111111@s.whatsapp.net"
BOB = "491702222222@s.whatsapp.net"


def test_a_line_a_crash_cut_short_is_skipped(tmp_path: Path) -> None:
    kept = SecretsFile(tmp_path, clock=FakeClock(1000.0))
    kept.add("M1", ALICE, (ALICE,), b"one")
    kept.add("M2", ALICE, (ALICE,), b"two")
    with kept.path.open("ab") as file:
        file.write(b'{"id":"M3","chat":"491')  # killed mid-write

    loaded = SecretsFile(tmp_path, clock=FakeClock(1000.0)).load()

    assert [(s.id, s.secret) for s in loaded] == [("M1", b"one"), ("M2", b"two")]
    assert stat.S_IMODE(kept.path.stat().st_mode) == 0o600
    assert b"M3" not in kept.path.read_bytes()  # rewritten without it


def test_old_lines_are_dropped_as_the_file_grows(tmp_path: Path) -> None:
    clock = FakeClock(1000.0)
    kept = SecretsFile(tmp_path, clock=clock)
    for n in range(200):
        kept.add(f"M{n}", ALICE, (ALICE,), b"s")
        clock.advance(60)  # one a minute: about 30 are young at any time

    lines = kept.path.read_bytes().splitlines()
    assert 30 <= len(lines) <= 2 * 64
    assert b'"id":"M199"' in lines[-1]


def test_forget_takes_a_persons_secrets_by_chat_or_sender(tmp_path: Path) -> None:
    kept = SecretsFile(tmp_path, clock=FakeClock(1000.0))
    kept.add("A1", ALICE, (ALICE,), b"a")
    kept.add("G1", "120363000000000000@g.us", (ALICE,), b"g")
    kept.add("B1", BOB, (BOB,), b"b")

    assert forget_secrets(tmp_path, {ALICE}) == 2
    assert [s.id for s in SecretsFile(tmp_path, clock=FakeClock(1000.0)).load()] == ["B1"]
    assert forget_secrets(tmp_path / "elsewhere", {ALICE}) == 0
