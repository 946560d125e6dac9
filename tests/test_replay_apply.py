"""``replay.py apply`` on a recorded history: what it writes, and when it refuses."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from tests.conversation import Recording, run_replay
from tests.llm_server import FakeLlmServer

pytestmark = pytest.mark.slow


@pytest.fixture
def server(history_server: FakeLlmServer) -> FakeLlmServer:
    return history_server


@pytest.fixture
def copy(history_copy: Recording) -> Recording:
    return history_copy


def _experiment(copy: Recording, server: FakeLlmServer, *settings: str) -> str:
    done = run_replay(["--chat", "Alice", "--limit", "1", *settings], copy, server)
    assert done.returncode == 0, done.stderr
    return max((copy.store / "replays").glob("*.json")).stem


def _apply(copy: Recording, server: FakeLlmServer, name: str) -> tuple[int, str, str]:
    done = run_replay(["apply", name, "--config", str(copy.config)], copy, server)
    return done.returncode, done.stdout, done.stderr


def _edit(path: Path, change: dict[str, object], indent: int | None = 2) -> None:
    config = json.loads(path.read_bytes())
    for key, value in change.items():
        section, _, field = key.partition(".")
        if section == "alice":
            config["monitored_entities"][0][field] = value
        else:
            config.setdefault(section, {})[field] = value
    path.write_text(json.dumps(config, indent=indent) + "\n")


def test_apply_refuses_to_undo_an_edit_made_since_the_experiment(
    copy: Recording, server: FakeLlmServer
):
    name = _experiment(copy, server, "--prompt", "Be brief.")
    _edit(copy.config, {"alice.prompt": "Answer in French."})
    before = copy.config.read_bytes()

    code, out, err = _apply(copy, server, name)

    assert code == 1
    assert out == ""
    assert err == (
        f"replay.py: {copy.config}: monitored_entities[0].prompt changed since experiment "
        f"{name} ran ('Suggest concrete options with prices.' then, 'Answer in French.' now); "
        "run the experiment again or edit app.json by hand\n"
    )
    assert copy.config.read_bytes() == before
    assert not copy.config.with_name("app.json.experiment").exists()


def test_apply_keeps_other_edits_every_other_key_and_the_formatting(
    copy: Recording, server: FakeLlmServer
):
    name = _experiment(copy, server, "--persona", "Terse.", "--model", "sonar-pro")
    _edit(copy.config, {"takeover.minutes": 45}, indent=4)
    copy.config.chmod(0o640)
    expected = json.loads(copy.config.read_bytes())
    expected["monitored_entities"][0]["persona"] = "Terse."
    expected["llm"]["model"] = "sonar-pro"

    code, out, err = _apply(copy, server, name)

    assert code == 0, err
    assert out.startswith(
        f"applied experiment {name} to {copy.config}: monitored_entities[0].persona, llm.model;"
    )
    text = copy.config.read_text()
    assert json.loads(text) == expected
    assert list(json.loads(text)) == list(expected)  # key order kept
    assert text.startswith('{\n    "whatsapp": {\n        "phone_number"')
    assert text.endswith("}\n")
    assert stat.S_IMODE(copy.config.stat().st_mode) == 0o640
    marker_path = copy.config.with_name("app.json.experiment")
    marker = json.loads(marker_path.read_bytes())
    assert marker["experiment"] == name
    assert marker["hash"] == hashlib.sha256(text.encode()).hexdigest()
    assert stat.S_IMODE(marker_path.stat().st_mode) == 0o600
    assert not [p for p in copy.workdir.iterdir() if p.name.endswith(".tmp")]

    again = _apply(copy, server, name)

    assert again == (
        0,
        f"{copy.config} already has the settings of experiment {name}; nothing written\n",
        "",
    )
    assert copy.config.read_text() == text


def test_apply_of_a_judged_run_across_chats_sets_each_chats_prompt(
    copy: Recording, server: FakeLlmServer
):
    done = run_replay(
        ["--chat", "Alice", "--chat", "Bob", "--prompt", "Be brief.", "--json"], copy, server
    )
    assert done.returncode == 0, done.stderr
    name = json.loads(done.stdout)["experiment"]

    code, out, err = _apply(copy, server, name)

    assert code == 0, err
    assert "monitored_entities[0].prompt, monitored_entities[1].prompt;" in out
    config = json.loads(copy.config.read_bytes())
    assert [e.get("prompt") for e in config["monitored_entities"]] == [
        "Be brief.",
        "Be brief.",
        None,
        None,
    ]


@pytest.mark.parametrize("case", ["unknown", "not-an-experiment", "nothing-to-apply"])
def test_apply_refuses_bad_experiments_with_one_line(
    copy: Recording, server: FakeLlmServer, case: str
):
    if case == "unknown":
        name = "20990101T000000Z-nobody"
    elif case == "not-an-experiment":
        name = str(copy.config)  # a JSON file, but not an experiment
    else:
        name = _experiment(copy, server, "--context", "replayed")
    before = copy.config.read_bytes()

    code, out, err = _apply(copy, server, name)

    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith("replay.py: ")
    assert copy.config.read_bytes() == before


def test_a_symlinked_app_json_stays_a_symlink(copy: Recording, server: FakeLlmServer):
    name = _experiment(copy, server, "--prompt", "Be brief.")
    real = copy.workdir / "etc" / "app.json"
    real.parent.mkdir()
    copy.config.replace(real)
    copy.config.symlink_to(real)

    code, _, err = _apply(copy, server, name)

    assert code == 0, err
    assert copy.config.is_symlink()
    assert json.loads(real.read_bytes())["monitored_entities"][0]["prompt"] == "Be brief."
    marker = json.loads(copy.config.with_name("app.json.experiment").read_bytes())
    assert marker["hash"] == hashlib.sha256(real.read_bytes()).hexdigest()


def test_app_json_and_the_marker_keep_app_jsons_owner(copy: Recording, server: FakeLlmServer):
    """A service install: the bot runs as its own user, root applies the experiment."""
    name = _experiment(copy, server, "--prompt", "Be brief.")
    groups = [g for g in os.getgroups() if g != os.getgid()]
    owner = (4321, 4321) if os.getuid() == 0 else (os.getuid(), (groups or [os.getgid()])[0])
    os.chown(copy.config, *owner)

    code, _, err = _apply(copy, server, name)

    assert code == 0, err
    for path in (copy.config, copy.config.with_name("app.json.experiment")):
        assert (path.stat().st_uid, path.stat().st_gid) == owner
