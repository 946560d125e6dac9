"""forget and the replay files: one chat's experiments and cached answers go, the others' stay."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from events.backends import open_reader
from pipeline.tools.replay import forget_replays
from pipeline.tools.replay._files import cache_folder, replace_private
from tests.conversation import Recording, run_replay
from tests.e2e.harness import GROUP, daemon_env, run_cli
from tests.history import ASKED, FAMILY_OWNER_REPLY
from tests.llm_server import FakeLlmServer, judge_question, verdict

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

    cleared = forget_replays(tmp_path / "replays", ALICE)

    assert cleared == (5, 0)
    left = {name for name, path in files.items() if path.exists()}
    assert left == {"bob", "bob_run"}
    assert sorted(p.name for p in (tmp_path / "replays" / "cache").iterdir()) == [cache_folder(BOB)]


def test_a_cache_folder_names_no_number() -> None:
    assert "491701111111" not in cache_folder(ALICE[0])
    assert cache_folder(ALICE[0]) != cache_folder(ALICE[1])


# -- on real experiment files, through ``forget`` ---------------------------------


def _replay(copy: Recording, server: FakeLlmServer, *args: str) -> str:
    """Run replay.py; the name of the experiment file it wrote."""
    before = set((copy.store / "replays").glob("*.json"))
    done = run_replay([*args, "--prompt", "Be brief.", "--json"], copy, server)
    assert done.returncode == 0, done.stderr
    (made,) = set((copy.store / "replays").glob("*.json")) - before
    return made.name


def _holding(store: Path, text: str) -> list[str]:
    return sorted(
        str(p.relative_to(store))
        for p in store.rglob("*")
        if p.is_file() and text.encode() in p.read_bytes()
    )


@pytest.mark.slow
def test_forget_takes_one_chat_s_turns_out_of_runs_across_chats_and_keeps_the_rest(
    history_copy: Recording, history_server: FakeLlmServer
) -> None:
    copy, server = history_copy, history_server
    replays = copy.store / "replays"
    server.respond(lambda body: verdict("tie", "same") if judge_question(body) else None)
    try:
        everything = _replay(copy, server, "--all")
        judged = _replay(copy, server, "--all", "--judge")
        family = _replay(copy, server, "--chat", "Family")
        assert (replays / family).is_file()
        alice = _replay(copy, server, "--chat", "Alice")
    finally:
        server.respond(None)
    assert _holding(copy.store, FAMILY_OWNER_REPLY)  # the scan sees what is there

    done = run_cli(
        ["forget", "--chat", "Family", "--store", str(copy.store)],
        cwd=copy.workdir,
        env=daemon_env(),
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("; took the chat's turns out of 2 replay files")
    assert not (replays / "cache" / cache_folder(GROUP)).exists()
    assert sorted(p.name for p in replays.glob("*.json")) == sorted([everything, judged, alice])
    for name in (everything, judged):
        doc = json.loads((replays / name).read_text())
        assert GROUP not in {t["chat"] for t in doc["turns"]}
        assert len(doc["turns"]) == len(ASKED) - 1
        assert doc["forgotten"] == {"chats": [GROUP], "turns": 1}
    page = (replays / judged).with_suffix(".html").read_text()
    assert "1 turns of 1 forgotten chats were removed" in page
    assert "Which RAM fits my laptop?" in page
    for words in (FAMILY_OWNER_REPLY, "what should we cook?"):
        assert _holding(copy.store, words) == []
    assert _holding(copy.store, "And in Florence?")  # the others' turns stay


@pytest.mark.slow
def test_a_forgotten_chat_is_not_listed_with_the_marker_of_its_forgetting(
    history_copy: Recording,
) -> None:
    store = history_copy.store
    done = run_cli(
        ["forget", "--chat", "Family", "--store", str(store)],
        cwd=history_copy.workdir,
        env=daemon_env(),
    )
    assert done.returncode == 0, done.stderr

    stats = run_cli(
        ["stats", "--json", "--store", str(store)], cwd=history_copy.workdir, env=daemon_env()
    )

    assert stats.returncode == 0, stats.stderr
    assert GROUP not in {c["chat"] for c in json.loads(stats.stdout)["chats"]}
    with open_reader(store) as log:
        assert GROUP not in log.chats()
        assert not list(log.read(chats=[GROUP]))
