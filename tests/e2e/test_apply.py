"""``replay.py apply``: the running bot hot-reloads the experiment's settings and says so."""

from __future__ import annotations

import hashlib
import json
import stat

from events.model import ConfigLoaded, LlmRequested
from tests.conversation import Recording, run_replay
from tests.e2e.harness import ALICE_PERSONA, Daemon, run_cli, write_atomically
from tests.llm_server import FakeLlmServer, untimed

BRIEF = "Be brief."


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_apply_reloads_the_prompt_and_audit_names_the_experiment(
    daemon: Daemon, llm_server: FakeLlmServer
):
    asked = daemon.message("Hotels in Rome?")
    assert daemon.next_sent()["reply_to"] == asked
    daemon.wait_event(LlmRequested, trigger_ids=[asked])
    store = Recording(daemon.workdir, 0, ())
    tried = run_replay(["--chat", "Alice", "--prompt", BRIEF], store, llm_server)
    assert tried.returncode == 0, tried.stderr
    name = next((daemon.store / "replays").glob("*.json")).stem
    before = daemon.config.read_bytes()
    mode = stat.S_IMODE(daemon.config.stat().st_mode)

    applied = run_replay(["apply", name], store, llm_server)

    assert applied.returncode == 0, applied.stderr
    assert applied.stdout == (
        f"applied experiment {name} to {daemon.config}: monitored_entities[0].prompt; "
        "a running bot loads it within 0.2 s\n"
    )
    after = daemon.config.read_bytes()
    expected = json.loads(before)
    expected["monitored_entities"][0]["prompt"] = BRIEF
    assert json.loads(after) == expected
    assert stat.S_IMODE(daemon.config.stat().st_mode) == mode
    loaded = daemon.wait_event(ConfigLoaded, hash=_sha(after))
    assert loaded.experiment == name

    second = daemon.message("And in Florence?")
    assert daemon.next_sent()["reply_to"] == second
    requested = daemon.wait_event(LlmRequested, trigger_ids=[second])
    assert untimed(requested.messages[0].content) == f"{ALICE_PERSONA}\n\n{BRIEF}"
    assert requested.config_hash == _sha(after)

    audit = run_cli(
        ["audit", "--chat", "Alice", "--store", str(daemon.store)],
        cwd=daemon.workdir,
        env=daemon.env,
    )
    assert audit.returncode == 0, audit.stderr
    changed = [ln for ln in audit.stdout.splitlines() if ln.startswith("  config ")][-1]
    assert changed == (
        f"  config {_sha(after)[:12]} (from replay experiment {name}): "
        f"monitored_entities[0].prompt: 'Suggest concrete options with prices.' -> {BRIEF!r}"
    )
    as_json = run_cli(
        ["audit", "--chat", "Alice", "--json", "--store", str(daemon.store)],
        cwd=daemon.workdir,
        env=daemon.env,
    )
    assert json.loads(as_json.stdout)["turns"][-1]["config"]["experiment"] == name


def test_a_hand_edit_after_apply_is_not_credited_to_the_experiment(
    daemon: Daemon, llm_server: FakeLlmServer
):
    asked = daemon.message("Hotels in Rome?")
    assert daemon.next_sent()["reply_to"] == asked
    store = Recording(daemon.workdir, 0, ())
    assert (
        run_replay(["--chat", "Alice", "--model", "sonar-pro"], store, llm_server).returncode == 0
    )
    name = next((daemon.store / "replays").glob("*.json")).stem
    assert run_replay(["apply", name], store, llm_server).returncode == 0
    assert daemon.wait_event(ConfigLoaded, hash=_sha(daemon.config.read_bytes())).experiment == name

    edited = json.loads(daemon.config.read_bytes())
    edited["takeover"]["minutes"] = 20
    write_atomically(daemon.config, json.dumps(edited, indent=2).encode())

    by_hand = daemon.wait_event(ConfigLoaded, hash=_sha(daemon.config.read_bytes()))
    assert by_hand.experiment is None
    assert by_hand.config["llm"]["model"] == "sonar-pro"
