"""The daemon and every tool with the log on PostgreSQL: one number or many, no secret out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from events.model import Compacted, ConfigLoaded
from pipeline.daemon._lease import SETTLE
from tests.e2e.conftest import MakeDaemon
from tests.e2e.harness import ALICE, OWNER, daemon_env, iter_store_files, run_cli, write_config
from tests.llm_server import TEST_KEY

PASSWORD = "s3cret-pw"
ROOT = Path(__file__).resolve().parents[2]


def _with_password(url: str, password: str = PASSWORD) -> str:
    return url.replace("postgres@", f"postgres:{password}@", 1)


def test_a_daemon_on_postgresql_answers_and_every_tool_reads_its_log(
    make_daemon: MakeDaemon, pg_url: str
) -> None:
    url = _with_password(pg_url)
    # store.url names a database that does not answer: WABOT_LOG_URL wins over it.
    dead = "postgresql://postgres:app-pw@127.0.0.1:1/test"
    daemon = make_daemon({"store": {"url": dead}}, env={"WABOT_LOG_URL": url})
    asked = daemon.message("Hotels in Rome?")
    assert daemon.next_sent()["reply_to"] == asked
    env = daemon_env(WABOT_LOG_URL=url)

    audit = run_cli(["audit", "--chat", "Alice", "--json"], cwd=daemon.workdir, env=env)
    assert audit.returncode == 0, audit.stderr
    texts = [e.get("text") for e in json.loads(audit.stdout)["events"]]
    assert "Hotels in Rome?" in texts
    stats = run_cli(["stats", "--json", "--log-url", url], cwd=daemon.workdir, env=daemon_env())
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["replies_sent"] == 2  # the startup message and the answer
    forget = run_cli(["forget", "--chat", "Alice"], cwd=daemon.workdir, env=env)
    assert forget.returncode == 0, forget.stderr
    assert forget.stdout.startswith(f"forgot {ALICE}: ")
    compact = run_cli(["compact"], cwd=daemon.workdir, env=env)
    assert compact.returncode == 0, compact.stderr
    code, stderr = daemon.stop()
    assert code == 0, stderr[-2000:]

    assert not (daemon.store / "events.db").exists()  # the log went to the database
    loaded = daemon.find(ConfigLoaded)[-1]
    assert loaded.config["store"]["url"] == "postgresql://postgres:***@127.0.0.1:1/test"
    seen = [
        stderr,
        *daemon.stdout_lines,
        audit.stdout + audit.stderr + stats.stdout + stats.stderr,
        *(p.read_text(errors="replace") for p in iter_store_files(daemon.store)),
        *(json.dumps(r.event.config) for r in daemon.events() if isinstance(r.event, ConfigLoaded)),
    ]
    assert not [text for text in seen if PASSWORD in text or "app-pw" in text]


def test_an_unreachable_database_at_start_is_one_line_and_exit_2(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "app.json",
        {"store": {"url": _with_password("postgresql://postgres@127.0.0.1:1/test")}},
    )
    env = daemon_env(PERPLEXITY_API_KEY=TEST_KEY, LLM_BASE_URL="http://127.0.0.1:9")
    runs = {
        "store.url": run_cli(
            ["run", "--transport", "stdio", "--config", str(config)], cwd=tmp_path, env=env
        ),
        "--log-url": run_cli(
            [
                "run",
                "--transport",
                "stdio",
                "--log-url",
                _with_password("postgresql://postgres@127.0.0.1:1/x"),
            ],
            cwd=tmp_path,
            env=env,
        ),
        "stats": run_cli(["stats"], cwd=tmp_path, env=env),
    }
    for how, result in runs.items():
        assert result.returncode == 2, (how, result.stderr)
        lines = result.stderr.splitlines()
        assert len(lines) == 1, (how, result.stderr)
        assert lines[0].startswith("wabot: postgresql://postgres@127.0.0.1:1/"), (how, lines)
        assert "cannot connect to PostgreSQL" in lines[0], (how, lines)
        assert PASSWORD not in result.stderr + result.stdout
        assert result.stdout == ""


def test_a_log_url_that_is_not_postgresql_is_one_line(tmp_path: Path) -> None:
    write_config(tmp_path / "app.json")
    env = daemon_env(PERPLEXITY_API_KEY=TEST_KEY, WABOT_LOG_URL="mysql://root:pw@db/wabot")
    result = run_cli(["run", "--transport", "stdio"], cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert result.stderr == (
        "wabot: environment: WABOT_LOG_URL: 'mysql://root:***@db/wabot' is not a postgresql://"
        " URL\n"
    )
    config = write_config(tmp_path / "app.json", {"store": {"url": "sqlite:///events.db"}})
    env = daemon_env(PERPLEXITY_API_KEY=TEST_KEY)
    result = run_cli(
        ["run", "--transport", "stdio", "--config", str(config)], cwd=tmp_path, env=env
    )
    assert result.returncode == 2
    assert "app.json: store.url: 'sqlite:///events.db' is not a postgresql:// URL" in result.stderr


OTHER = "491700000077"


def test_two_numbers_share_a_database_and_the_tools_ask_which(
    make_daemon: MakeDaemon, pg_url: str
) -> None:
    env = {"WABOT_LOG_URL": pg_url}
    first = make_daemon(env=env)
    second = make_daemon({"whatsapp": {"phone_number": OTHER}}, env=env)
    for daemon, text in ((first, "Hello from one"), (second, "Hello from two")):
        asked = daemon.message(text)
        assert daemon.next_sent()["reply_to"] == asked
    cli_env = daemon_env(WABOT_LOG_URL=pg_url)

    def cli(*args: str) -> tuple[int, str, str]:
        done = run_cli(list(args), cwd=first.workdir, env=cli_env)
        return done.returncode, done.stdout, done.stderr

    code, _, err = cli("audit", "--chat", "Alice")
    assert code == 2
    assert err.splitlines() == [
        f"wabot: postgresql://postgres@127.0.0.1:5432/test holds the logs of 2 numbers"
        f" ({OWNER}, {OTHER}): choose one with --number"
    ]
    code, out, err = cli("audit", "--chat", "Alice", "--number", f"+{OTHER}", "--json")
    assert code == 0, err
    texts = [e.get("text") for e in json.loads(out)["events"]]
    assert "Hello from two" in texts
    assert "Hello from one" not in texts

    code, out, err = cli("stats", "--all")
    assert code == 0, err
    rows = out.splitlines()
    assert rows[0].split()[:3] == ["number", "chats", "events"]
    assert [r.split()[0] for r in rows[1:3]] == [OWNER, OTHER]
    assert rows[3].startswith("Total: 2 numbers,")
    code, out, err = cli("stats", "--all", "--json")
    assert code == 0, err
    assert sorted(json.loads(out)["numbers"]) == [OWNER, OTHER]

    code, _, err = cli("stats", "--number", "491700000099")
    assert code == 2
    assert f"no log for number 491700000099 (logs: {OWNER}, {OTHER})" in err

    replayed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "replay.py"),
            "--chat",
            "Alice",
            "--recorded",
            "--json",
            *("--number", OTHER),
        ],
        cwd=first.workdir,
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert replayed.returncode == 0, replayed.stderr
    assert json.loads(replayed.stdout)["chat"] == ALICE
    code, out, err = cli("forget", "--chat", "Alice", "--number", OTHER)
    assert code == 0, err
    assert [r for r in second.events() if r.event.chat == ALICE] == []
    forgot = [r.event.chats for r in second.events() if isinstance(r.event, Compacted)]
    assert forgot == [[ALICE]]
    # The first number's log is untouched.
    assert "MessageReceived" in [type(r.event).__name__ for r in first.events()]


def test_a_restart_after_a_clean_stop_goes_live_without_the_settle_wait(
    make_daemon: MakeDaemon, pg_url: str
) -> None:
    """The lease's wait lets a holder cut off from the database notice and end; a daemon
    that stopped said so (about 4 of a restart's 5 s). After a kill -9 the next one waits."""
    daemon = make_daemon(env={"WABOT_LOG_URL": pg_url})

    def lease_taken() -> dict[str, object]:
        line: dict[str, object] = json.loads(daemon.wait_stderr('"lease_taken"'))
        daemon.wait_stderr('"started"')  # up: a restart this soon sends no startup message
        return line

    assert lease_taken()["going_live_in_seconds"] == SETTLE  # nobody known held it
    code, stderr = daemon.stop()
    assert code == 0, stderr[-2000:]
    daemon.start(expect_startup=False)
    taken = lease_taken()
    assert taken["going_live_in_seconds"] == 0
    assert str(taken["released_by"]).startswith("pid ")
    daemon.kill9()
    daemon.start(expect_startup=False)
    assert lease_taken()["going_live_in_seconds"] == SETTLE
