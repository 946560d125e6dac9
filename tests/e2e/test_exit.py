"""Exit statuses and one-line errors of ``python -m pipeline run`` (docs/cli.md)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from tests.e2e.harness import Daemon, daemon_env, run_cli, write_config
from tests.llm_server import TEST_KEY, FakeLlmServer


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_cleanly(daemon: Daemon, sig: signal.Signals):
    msg_id = daemon.message("hello")
    assert daemon.next_sent()["reply_to"] == msg_id

    code, stderr = daemon.stop(sig, timeout=15)

    assert code == 0, stderr[-2000:]
    assert "Traceback" not in stderr


def _run(tmp_path: Path, *args: str, **env: str | None):
    full = {"PERPLEXITY_API_KEY": TEST_KEY, "LLM_BASE_URL": "http://127.0.0.1:9", **env}
    return run_cli(
        ["run", "--transport", "stdio", "--store", str(tmp_path / "store"), *args],
        cwd=tmp_path,
        env=daemon_env(**full),
    )


def _assert_usage_error(result: subprocess.CompletedProcess[str], *names: str) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for name in names:
        assert name in lines[0], lines[0]
    assert result.stdout == ""
    line: str = lines[0]
    return line


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"polling": {"interval_secs": 1}}, "polling.interval_secs"),
        ({"vitality": {"timezone": "Mars/Olympus_Mons"}}, "vitality.timezone"),
        ({"whatsapp": {"phone_number": "12ab"}}, "whatsapp.phone_number"),
        ({"takeover": {"minutes": "thirty"}}, "takeover.minutes"),
    ],
    ids=["unknown-key", "bad-timezone", "bad-phone", "wrong-type"],
)
def test_invalid_config_exits_2_naming_file_and_field(tmp_path, overrides, field):
    config = write_config(tmp_path / "app.json", overrides)

    result = _run(tmp_path, "--config", str(config))

    _assert_usage_error(result, "app.json", field)


OWNER = '{"whatsapp": {"phone_number": "491700000000"}'


@pytest.mark.parametrize(
    ("text", "names"),
    [
        (OWNER + ",,}", ()),
        (OWNER + ', "x": ' + "[" * 10_000 + "]" * 10_000 + "}", ("nested too deeply",)),
        (OWNER + ', "llm": {"temperature": 1e400}}', ("llm.temperature", "out of range")),
        (OWNER + f', "llm": {{"max_retries": {2**64}}}}}', ("llm.max_retries", "<= 100")),
    ],
    ids=["syntax", "nested-10000", "1e400", "2**64"],
)
def test_invalid_json_exits_2_naming_the_file(tmp_path, text, names):
    config = tmp_path / "app.json"
    config.write_text(text)

    _assert_usage_error(_run(tmp_path, "--config", str(config)), "app.json", *names)


def test_missing_api_key_exits_2(tmp_path):
    config = write_config(tmp_path / "app.json")

    result = _run(tmp_path, "--config", str(config), PERPLEXITY_API_KEY=None)

    _assert_usage_error(result, "PERPLEXITY_API_KEY")


def test_missing_config_file_exits_2(tmp_path):
    _assert_usage_error(_run(tmp_path, "--config", str(tmp_path / "nope.json")), "nope.json")


def test_missing_env_file_exits_2(tmp_path):
    config = write_config(tmp_path / "app.json")

    result = _run(tmp_path, "--config", str(config), "--env", str(tmp_path / "missing.env"))

    _assert_usage_error(result, "missing.env")


def test_a_second_daemon_on_the_same_store_is_refused(daemon: Daemon):
    result = run_cli(
        [
            "run",
            "--transport",
            "stdio",
            "--config",
            str(daemon.config),
            "--store",
            str(daemon.store),
        ],
        cwd=daemon.workdir,
        env=daemon_env(PERPLEXITY_API_KEY=TEST_KEY),
    )

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "another wabot (pid " in result.stderr
    assert result.stdout == ""
    msg_id = daemon.message("still there?")
    assert daemon.next_sent()["reply_to"] == msg_id


def test_an_unusable_store_is_one_line_and_exit_2(tmp_path):
    blocker = tmp_path / "store"
    blocker.write_text("not a directory")
    result = run_cli(
        [
            "run",
            "--transport",
            "stdio",
            "--config",
            str(write_config(tmp_path / "app.json")),
            "--store",
            str(blocker),
        ],
        cwd=tmp_path,
        env=daemon_env(PERPLEXITY_API_KEY=TEST_KEY),
    )

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "cannot use the store" in result.stderr


PROXY_PASSWORD = "Pw-proxy-9f8e7d6c"


def test_a_base_url_with_a_password_and_an_api_key_is_refused_at_start(tmp_path):
    """httpx sends a URL's ``user:password@`` as Basic auth in the Authorization header the
    bearer key needs: the LLM would get the proxy's password instead of the key (and
    refuse every call). ``run`` refuses at start, in one line without the password, and
    the fake LLM server hears nothing."""
    with FakeLlmServer() as server:
        url = server.base_url.replace("http://", f"http://proxyuser:{PROXY_PASSWORD}@")
        config = write_config(tmp_path / "app.json")
        result = _run(tmp_path, "--config", str(config), LLM_BASE_URL=url)
        line = _assert_usage_error(result, "LLM_BASE_URL", "PERPLEXITY_API_KEY")
        assert server.requests == []
    assert "http://proxyuser:***@127.0.0.1:" in line
    assert "carries a user and password" in line
    logs = tmp_path / "store" / "logs"
    written = [p.read_text() for p in logs.rglob("*") if p.is_file()] if logs.exists() else []
    assert not any(PROXY_PASSWORD in text for text in [result.stderr, *written])
