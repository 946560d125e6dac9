"""The ``media`` section of app.json and the transcription settings from the environment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import ConfigError, load_config
from pipeline.daemon._attachments import missing_key
from tests.test_config import BASE, KEY, ROOT, write


def loaded(tmp_path: Path, media: dict[str, Any] | None = None, **environ: str) -> Any:
    doc = {**BASE, **({"media": media} if media is not None else {})}
    return load_config(write(tmp_path, doc), environ={**KEY, **environ})


def test_the_documented_defaults(tmp_path: Path) -> None:
    media = loaded(tmp_path).config.media
    assert (media.enabled, media.max_mb, media.vision) == (True, 16.0, True)
    assert media.max_bytes == 16 * 1024 * 1024
    heard = media.transcription
    assert (heard.provider, heard.base_url, heard.model, heard.language) == (
        "openai",
        "https://api.openai.com/v1",
        "whisper-1",
        None,
    )
    assert (heard.max_retries, heard.price_per_minute_usd) == (3, 0.006)


def test_the_transcription_key_falls_back_to_the_llm_key(tmp_path: Path) -> None:
    assert loaded(tmp_path).secrets.transcription_key is None
    assert loaded(tmp_path, LLM_API_KEY="sk-llm").secrets.transcription_key == "sk-llm"
    both = loaded(tmp_path, LLM_API_KEY="sk-llm", TRANSCRIPTION_API_KEY="gsk-own")
    assert both.secrets.transcription_key == "gsk-own"
    assert "gsk-own" not in repr(both)
    assert "gsk-own" not in json.dumps(both.public_dict())


def test_the_environment_overrides_the_transcription_base_url(tmp_path: Path) -> None:
    config = loaded(tmp_path, TRANSCRIPTION_BASE_URL="http://127.0.0.1:8000/v1").config
    assert config.media.transcription.base_url == "http://127.0.0.1:8000/v1"
    with pytest.raises(ConfigError) as caught:
        loaded(tmp_path, TRANSCRIPTION_BASE_URL="localhost:8000")
    assert str(caught.value) == (
        "environment: TRANSCRIPTION_BASE_URL: 'localhost:8000' is not an http(s) URL"
    )


@pytest.mark.parametrize(
    ("media", "field"),
    [
        ({"max_mb": 0}, "media.max_mb"),
        ({"max_mb": 500}, "media.max_mb"),
        ({"vison": True}, "media.vison"),
        ({"transcription": {"provider": "google"}}, "media.transcription.provider"),
        ({"transcription": {"base_url": "ftp://x"}}, "media.transcription.base_url"),
        ({"transcription": {"model": " "}}, "media.transcription.model"),
        (
            {"transcription": {"price_per_minute_usd": -1}},
            "media.transcription.price_per_minute_usd",
        ),
    ],
)
def test_a_wrong_media_setting_is_one_line_naming_it(
    tmp_path: Path, media: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        loaded(tmp_path, media)
    message = str(caught.value)
    assert field in message
    assert "\n" not in message


GROUP_ONLY = [{"type": "group", "jid": "120363000000000000@g.us", "name": "Family"}]
ALWAYS = [{**GROUP_ONLY[0], "trigger": {"mode": "always"}}]


@pytest.mark.parametrize(
    ("changes", "environ", "warned"),
    [
        ({}, {}, True),  # a person's voice note goes to OpenAI with no key
        ({}, {"LLM_API_KEY": "sk-llm"}, False),
        ({}, {"TRANSCRIPTION_BASE_URL": "http://127.0.0.1:8000/v1"}, False),
        ({"media": {"enabled": False}}, {}, False),
        # A mention or keyword group never transcribes: a voice note has no caption to trigger.
        ({"monitored_entities": GROUP_ONLY}, {}, False),
        ({"monitored_entities": ALWAYS}, {}, True),
        ({"monitored_entities": [{"type": "self"}]}, {}, True),
    ],
)
def test_the_missing_key_is_warned_of_only_where_a_voice_note_would_need_it(
    tmp_path: Path, changes: dict[str, Any], environ: dict[str, str], warned: bool
) -> None:
    doc = {**BASE, **changes}
    config = load_config(write(tmp_path, doc), environ={**KEY, **environ})
    assert missing_key(config) is warned


def test_the_shipped_app_json_warns_only_without_any_transcription_key() -> None:
    shipped = ROOT / "app.json"
    assert missing_key(load_config(shipped, environ=KEY))
    assert not missing_key(load_config(shipped, environ={**KEY, "TRANSCRIPTION_API_KEY": "sk-1"}))
