"""The ``web`` section of app.json and ``WABOT_WEB_TOKEN``: checked at start, one line each."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import ConfigError, WebConfig, load_config, web_token
from tests.test_config import KEY, error_of, patched, write

TOKEN = "0123456789abcdef0123"


def test_the_console_is_off_and_on_loopback_by_default(tmp_path: Path):
    web = load_config(write(tmp_path, patched()), environ=KEY).config.web
    assert (web.enabled, web.listen, web.host, web.port, web.loopback) == (
        False,
        "127.0.0.1:8765",
        "127.0.0.1",
        8765,
        True,
    )


@pytest.mark.parametrize(
    ("listen", "host", "port", "loopback"),
    [
        ("localhost:9000", "localhost", 9000, True),
        ("[::1]:8765", "::1", 8765, True),
        ("127.0.0.2:0", "127.0.0.2", 0, True),
        ("0.0.0.0:8765", "0.0.0.0", 8765, False),
        ("[::]:8765", "::", 8765, False),
        ("bot.example.org:443", "bot.example.org", 443, False),
    ],
)
def test_listen_is_host_and_port(listen: str, host: str, port: int, loopback: bool):
    web = WebConfig(listen=listen)
    assert (web.host, web.port, web.loopback) == (host, port, loopback)


@pytest.mark.parametrize(
    "listen", ["8765", "127.0.0.1", ":8765", "127.0.0.1:http", "h:70000", "[::1]"]
)
def test_a_listen_that_is_not_host_port_is_one_line_naming_the_field(tmp_path: Path, listen: str):
    message = error_of(write(tmp_path, patched(web={"enabled": True, "listen": listen})))
    assert message.startswith(f"{tmp_path / 'app.json'}: web.listen: ")
    assert "is not host:port" in message


def test_an_unknown_key_in_web_is_an_error(tmp_path: Path):
    message = error_of(write(tmp_path, patched(web={"enable": True})))
    assert message.endswith("web.enable: unknown key")


def test_a_public_address_without_a_token_stops_the_start(tmp_path: Path):
    app = write(tmp_path, patched(web={"enabled": True, "listen": "0.0.0.0:8765"}))
    message = error_of(app)
    assert message == (
        f"{app}: web.listen: 0.0.0.0:8765 is not a loopback address: set WABOT_WEB_TOKEN "
        "(environment or .env) so the console asks for it"
    )


def test_a_public_address_with_a_token_from_env_file_loads(tmp_path: Path):
    app = write(tmp_path, patched(web={"enabled": True, "listen": "0.0.0.0:8765"}))
    env = write(tmp_path, f"WABOT_WEB_TOKEN={TOKEN}\n", ".env")
    loaded = load_config(app, env_file=env, environ=KEY)
    assert loaded.secrets.web_token == TOKEN
    assert TOKEN not in repr(loaded)
    assert "web_token=<set>" in repr(loaded.secrets)


def test_a_disabled_console_needs_no_token(tmp_path: Path):
    app = write(tmp_path, patched(web={"enabled": False, "listen": "0.0.0.0:8765"}))
    assert load_config(app, environ=KEY).config.web.loopback is False


def test_a_short_token_is_refused_where_it_was_set(tmp_path: Path):
    app = write(tmp_path, patched(web={"enabled": True}))
    message = error_of(app, environ={**KEY, "WABOT_WEB_TOKEN": "secret"})
    assert message == (
        "environment: WABOT_WEB_TOKEN is too short (6 characters, at least 16; "
        "e.g. openssl rand -hex 16)"
    )


def test_the_web_command_reads_the_token_like_the_daemon(tmp_path: Path):
    env = write(tmp_path, f"WABOT_WEB_TOKEN={TOKEN}\n", ".env")
    public = WebConfig(enabled=True, listen="0.0.0.0:1")
    assert web_token(public, env_file=env, environ={}) == TOKEN
    assert web_token(WebConfig(), env_file=None, environ={}) is None
    with pytest.raises(ConfigError, match=r"^--listen: 0\.0\.0\.0:1 is not a loopback address"):
        web_token(public, env_file=None, environ={})
