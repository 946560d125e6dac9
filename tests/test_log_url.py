"""Which log a command uses: WABOT_LOG_URL, then --log-url, then store.url; no password shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from events.postgres import PostgresLog
from events.protocol import LogError
from pipeline.config import ConfigError, dsn_passwords, dsn_problem, redact_dsn
from pipeline.paths import log_url

ENV = "postgresql://env@db/one"
ARG = "postgresql://arg@db/two"
APP = "postgresql://app@db/three"


def test_the_environment_wins_then_the_option_then_app_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WABOT_LOG_URL", raising=False)
    assert log_url(None, None, None) is None
    assert log_url(None, None, APP) == APP
    assert log_url(ARG, None, APP) == ARG
    dotenv = tmp_path / ".env"
    dotenv.write_text("WABOT_LOG_URL=postgresql://wabot:pa$$word@db/from-file\n")
    assert log_url(ARG, dotenv, APP) == "postgresql://wabot:pa$$word@db/from-file"  # literal
    monkeypatch.setenv("WABOT_LOG_URL", ENV)
    assert log_url(ARG, dotenv, APP) == ENV


def test_a_url_that_is_not_postgresql_is_one_line_without_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WABOT_LOG_URL", "mysql://root:hunter2@db/wabot")
    with pytest.raises(ConfigError) as caught:
        log_url(None, None, None)
    assert str(caught.value) == (
        "environment: WABOT_LOG_URL: 'mysql://root:***@db/wabot' is not a postgresql:// URL"
    )
    monkeypatch.delenv("WABOT_LOG_URL")
    with pytest.raises(ConfigError, match="command line: --log-url: 'db:5432' is not"):
        log_url("db:5432", None, None)


def test_a_bad_url_in_env_file_is_blamed_on_that_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WABOT_LOG_URL", raising=False)
    dotenv = tmp_path / ".env"
    dotenv.write_text("WABOT_LOG_URL=mysql://root:hunter2@db/wabot\n")
    with pytest.raises(ConfigError) as caught:
        log_url(None, dotenv, None)
    assert str(caught.value) == (
        f"{dotenv}: WABOT_LOG_URL: 'mysql://root:***@db/wabot' is not a postgresql:// URL"
    )


@pytest.mark.parametrize(
    ("url", "shown", "secrets"),
    [
        ("postgresql://u:s3cret@h:5432/db", "postgresql://u:***@h:5432/db", ["s3cret"]),
        ("postgres://u:p%40ss@h/db?schema=x", "postgres://u:***@h/db?schema=x", ["p%40ss", "p@ss"]),
        (
            "postgresql://h/db?password=s3cret&sslmode=require",
            "postgresql://h/db?password=***&sslmode=require",
            ["s3cret"],
        ),
        ("postgresql://u@h/db", "postgresql://u@h/db", []),
    ],
)
def test_passwords_are_found_and_hidden(url: str, shown: str, secrets: list[str]) -> None:
    assert redact_dsn(url) == shown
    assert dsn_passwords(url) == sorted(secrets)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:s3cret@[bad/db",  # an unclosed IPv6 host: urllib raises
        "postgresql://u:p%zzs3cret@127.0.0.1:1/db",  # a bad %-escape: libpq quotes the DSN
        "postgresql://u:s3cret@127.0.0.1:abc/db",
    ],
)
def test_a_malformed_url_is_one_line_without_its_password(url: str) -> None:
    problem = dsn_problem(url)
    if problem is not None:
        assert "s3cret" not in problem
    with pytest.raises(LogError) as caught:
        PostgresLog(url, name="491700000000")
    assert "s3cret" not in str(caught.value)
    assert "\n" not in str(caught.value)
