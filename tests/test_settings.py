"""The config in force: a reload that fails for any reason keeps the old one (issue 9)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import structlog

from events.backends import open_log
from events.model import ConfigLoaded
from pipeline.config import load_config
from pipeline.daemon import FoldedLog, Settings
from pipeline.daemon import _settings as settings_module
from pipeline.daemon._settings import RESTART_ONLY


def write(path: Path, interval: float) -> None:
    doc = {"whatsapp": {"phone_number": "491700000000"}, "polling": {"interval_seconds": interval}}
    path.write_text(json.dumps(doc))


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """app.json with ``polling.interval_seconds`` 5, and the API key it needs."""
    monkeypatch.setenv("PERPLEXITY_API_KEY", "pplx-test")
    write(tmp_path / "app.json", 5)
    return tmp_path / "app.json"


@pytest.mark.anyio
async def test_a_failing_reload_of_any_kind_keeps_the_config_and_is_reported_once(
    tmp_path: Path, app: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(load_config(app))
    first = settings.loaded
    with open_log(tmp_path / "store") as log:
        folded = FoldedLog(log)
        write(app, 7)

        def broken(*_: object, **__: object) -> None:
            raise RuntimeError("a bug in loading")

        monkeypatch.setattr(settings_module, "load_config", broken)
        with structlog.testing.capture_logs() as logs:
            await settings.reload(folded)
            await settings.reload(folded)
        monkeypatch.undo()
        monkeypatch.setenv("PERPLEXITY_API_KEY", "pplx-test")
        write(app, 9)
        await settings.reload(folded)
        recorded = [r.event for r in log.read() if isinstance(r.event, ConfigLoaded)]

    assert [entry["event"] for entry in logs] == ["config_rejected"]
    assert "RuntimeError: a bug in loading" in logs[0]["error"]
    assert settings.loaded is not first
    assert settings.app.polling.interval_seconds == 9
    assert [e.config["polling"]["interval_seconds"] for e in recorded] == [9]


@pytest.mark.anyio
async def test_a_broken_experiment_marker_only_means_no_experiment_is_named(
    tmp_path: Path, app: Path
) -> None:
    settings = Settings(load_config(app))
    marker = app.with_name(app.name + settings_module.EXPERIMENT_SUFFIX)
    with open_log(tmp_path / "store") as log:
        folded = FoldedLog(log)
        for n, junk in enumerate([b"[" * 10_000 + b"]" * 10_000, b'{"hash": "\xff"}'], start=6):
            marker.write_bytes(junk)
            write(app, n)
            await settings.reload(folded)
        recorded = [r.event for r in log.read() if isinstance(r.event, ConfigLoaded)]

    assert [(e.config["polling"]["interval_seconds"], e.experiment) for e in recorded] == [
        (6, None),
        (7, None),
    ]


@pytest.mark.anyio
async def test_an_edit_of_a_key_read_once_at_start_keeps_its_value_and_warns_once(
    tmp_path: Path, app: Path
) -> None:
    """A typo'd new phone_number must not receive the debug notes at once (docs/config.md)."""
    settings = Settings(load_config(app))
    edited = {
        "whatsapp": {"phone_number": "491700000099", "typing": False},
        "polling": {"interval_seconds": 7},
        "logging": {"level": "DEBUG"},
    }
    with open_log(tmp_path / "store") as log:
        folded = FoldedLog(log)
        app.write_text(json.dumps(edited))
        with structlog.testing.capture_logs() as logs:
            await settings.reload(folded)
            await settings.reload(folded)
        recorded = [r.event for r in log.read() if isinstance(r.event, ConfigLoaded)]

    assert settings.app.owner_jid == "491700000000@s.whatsapp.net"
    assert settings.app.logging.level == "INFO"
    assert (settings.app.polling.interval_seconds, settings.app.whatsapp.typing) == (7, False)
    warnings = [e for e in logs if e["event"] == "config_needs_restart"]
    assert [w["keys"] for w in warnings] == [["whatsapp.phone_number", "logging.level"]]
    assert [e.config["whatsapp"]["phone_number"] for e in recorded] == ["491700000000"]


def test_the_keys_read_once_at_start_are_those_docs_config_md_names() -> None:
    text = " ".join((Path(__file__).parent.parent / "docs" / "config.md").read_text().split())
    sentence = text.split("Read once at start, so a change needs a restart: ")[1].split(".\n")[0]
    named = re.findall(r"`([a-z_.*]+)`", sentence.split(". ")[0])
    keys = [".".join(path) + (".*" if len(path) == 1 else "") for path in RESTART_ONLY]
    assert named == keys
