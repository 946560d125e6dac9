"""The daemon credits a config to a replay experiment only while app.json is what apply wrote."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from pipeline.daemon._settings import applied_experiment


@pytest.fixture
def app_json(tmp_path: Path) -> Path:
    path = tmp_path / "app.json"
    path.write_text('{"whatsapp": {"phone_number": "491700000000"}}\n')
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _marker(app_json: Path, text: str) -> None:
    app_json.with_name("app.json.experiment").write_text(text)


def test_a_marker_for_this_app_json_names_the_experiment(app_json: Path):
    _marker(app_json, json.dumps({"experiment": "20261125T124919Z-all", "hash": _sha(app_json)}))

    assert applied_experiment(app_json, _sha(app_json)) == "20261125T124919Z-all"


@pytest.mark.parametrize(
    "marker",
    [
        None,
        '{"experiment": "x", "hash": "0000"}',  # app.json was edited since
        '{"experiment": "", "hash": "SHA"}',
        '{"experiment": 7, "hash": "SHA"}',
        '["x", "SHA"]',
        "{torn",
    ],
    ids=["missing", "other-hash", "empty-name", "not-a-name", "not-an-object", "torn"],
)
def test_anything_else_names_no_experiment(app_json: Path, marker: str | None):
    if marker is not None:
        _marker(app_json, marker.replace("SHA", _sha(app_json)))

    assert applied_experiment(app_json, _sha(app_json)) is None
