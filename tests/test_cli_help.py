"""``--help`` is written for the person running the bot (issue 9, item 18)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline import cli
from pipeline.tools.replay import _cli as replay_cli

ROOT = Path(__file__).resolve().parent.parent


def parsers() -> dict[str, argparse.ArgumentParser]:
    """Every parser of both commands, subcommands included, by its prog."""
    found: dict[str, argparse.ArgumentParser] = {}
    todo = [cli._parser(), replay_cli._parser(), replay_cli._apply_parser()]
    while todo:
        parser = todo.pop()
        found[parser.prog] = parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo += action.choices.values()
    return found


PARSERS = parsers()


def test_every_command_is_found() -> None:
    assert set(PARSERS) == {
        "python -m pipeline",
        "python replay.py",
        "python replay.py apply",
        *(
            f"python -m pipeline {c}"
            for c in ("run", "audit", "stats", "compact", "forget", "web", "migrate", "inbound")
        ),
    }


@pytest.mark.parametrize("prog", PARSERS)
def test_every_option_says_what_it_does(prog: str) -> None:
    silent = [
        action.option_strings[0]
        for action in PARSERS[prog]._actions
        if action.option_strings and not action.help
    ]
    assert silent == []


@pytest.mark.parametrize("prog", PARSERS)
def test_help_speaks_to_users_not_to_the_source(prog: str) -> None:
    text = PARSERS[prog].format_help()
    for internal in (".md", "``", "section "):
        assert internal not in text


@pytest.mark.parametrize("prog", [p for p in PARSERS if "--store" in PARSERS[p].format_help()])
def test_store_help_names_its_environment_variable(prog: str) -> None:
    assert "$WABOT_STORE" in " ".join(PARSERS[prog].format_help().split())


@pytest.mark.parametrize("argv", [["-m", "pipeline", "--help"], ["replay.py", "--help"]])
def test_help_exits_0_and_describes_the_tool(argv: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    assert "event log" in done.stdout


@pytest.mark.parametrize(
    ("main", "argv", "expected"),
    [
        pytest.param(
            cli.main,
            ["run", "--transport", "foo"],
            "wabot: argument --transport: invalid choice: 'foo' (choose from 'neonize',"
            " 'stdio') (see --help)",
            id="pipeline-subcommand",
        ),
        pytest.param(
            cli.main,
            [],
            "wabot: the following arguments are required: COMMAND (see --help)",
            id="pipeline-no-command",
        ),
        pytest.param(
            replay_cli.main,
            ["--bogus"],
            "replay.py: unrecognized arguments: --bogus (see --help)",
            id="replay",
        ),
    ],
)
def test_a_command_line_mistake_is_one_line_and_exit_2(
    main: Callable[[list[str]], int],
    argv: list[str],
    expected: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert capsys.readouterr().err == expected + "\n"


@pytest.mark.parametrize(
    "prog", [p for p in PARSERS if "--log-url" in PARSERS[p]._option_string_actions]
)
def test_log_url_help_says_the_variable_wins_over_it(prog: str) -> None:
    """docs/cli.md: WABOT_LOG_URL, then --log-url, then store.url: not a default of it."""
    text = PARSERS[prog]._option_string_actions["--log-url"].help or ""
    assert "$WABOT_LOG_URL, when set, wins over this option" in text
    assert "default store.url" in text
