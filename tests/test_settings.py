"""The config in force: a reload that fails for any reason keeps the old one (issue 9)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import structlog

from events.backends import open_log
from events.model import ConfigLoaded
from pipeline.config import load_config
from pipeline.daemon import FoldedLog, Settings
from pipeline.daemon import _settings as settings_module


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
