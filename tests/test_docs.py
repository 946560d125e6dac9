"""``docs/`` holds the contracts, and says what the code does (issue 19).

Each test walks the code (the app.json structs, the stdio line structs, the
events, the argparse parsers) and the tables of one ``docs/`` file, and fails
naming every key, field or flag that one has and the other lacks: after a
merge adds a field, the message says which row to write.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import re
import sqlite3
import subprocess
from pathlib import Path

import msgspec
import msgspec.inspect as mi
import pytest

from events.model import EVENT_TYPES, Event
from events.sqlite._schema import SCHEMA
from pipeline.config import AppConfig, Environment, load_config
from pipeline.paths import log_url, store_dir
from pipeline.tools._stats import Report
from pipeline.transport import _stdio_lines as stdio_lines
from tests import contracts
from tests.contracts import REQUIRED, Leaf, Shape, backticked, doc, documented, rows, sections
from tests.test_cli_help import parsers


def _missing(what: str, where: str, names: set[str], hint: str) -> str:
    return f"{where}: {what}: {', '.join(sorted(names))} ({hint})"


# -- app.json: docs/config.md -------------------------------------------------------

CONFIG = contracts.of(AppConfig)
CONFIG_ROWS = {row.names[0]: row for row in rows(doc("config.md"), "key") if row.names}


def test_every_app_json_key_is_documented() -> None:
    missing = CONFIG.paths - set(CONFIG_ROWS)
    assert not missing, _missing(
        "keys the code accepts but no row names",
        "docs/config.md",
        missing,
        "add a `| key | type | default | range | meaning |` row for each",
    )


def test_every_documented_key_exists() -> None:
    stale = set(CONFIG_ROWS) - CONFIG.paths - CONFIG.parents
    assert not stale, _missing(
        "rows for keys the code does not accept", "docs/config.md", stale, "remove or rename them"
    )


def test_each_config_row_names_one_key() -> None:
    crowded = [row.cells[0] for row in rows(doc("config.md"), "key") if len(row.names) != 1]
    assert not crowded, f"docs/config.md: one key per row, not {crowded}"


def _leaves(path: str) -> list[Leaf]:
    return [leaf for leaf in CONFIG.leaves if leaf.path == path]


def _cell(path: str, column: str) -> str:
    row = CONFIG_ROWS[path]
    return row.cells[row.header.index(column)]


def _json_values(cell: str) -> list[object]:
    values = []
    for text in backticked(cell):
        try:
            values.append(msgspec.json.decode(text))
        except msgspec.DecodeError:
            continue  # a word, not a value
    return values


DOCUMENTED_LEAVES = sorted(CONFIG.paths & set(CONFIG_ROWS))


@pytest.mark.parametrize("path", DOCUMENTED_LEAVES)
def test_the_documented_default_is_the_code_s(path: str) -> None:
    cell = _cell(path, "default")
    for leaf in _leaves(path):
        if path.endswith("[].type"):  # a union's tag: there is no default
            assert "required" in cell, f"docs/config.md: {path}: the tag is required"
            continue
        default = contracts.json_default(leaf)
        if default is REQUIRED:
            assert "required" in cell, f"docs/config.md: {path}: say it is required"
        else:
            assert default in _json_values(cell), (
                f"docs/config.md: {path}: default is `{msgspec.json.encode(default).decode()}`"
                f" in {leaf.owner.cls.__name__}, the row says {cell!r}"
            )


def _plain(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _range(node: mi.Type) -> str | set[str] | None:
    """The range column's text for a number, the set of choices for a Literal, else None."""
    if isinstance(node, mi.UnionType):
        ranges = [r for t in node.types if (r := _range(t)) is not None]
        return ranges[0] if ranges else None
    if isinstance(node, mi.IntType | mi.FloatType):
        top = node.le if node.le is not None else node.lt
        assert top is not None
        if node.gt is not None:
            return f"over {_plain(node.gt)}, up to {_plain(top)}"
        assert node.ge is not None
        return f"{_plain(node.ge)} to {_plain(top)}"
    if isinstance(node, mi.LiteralType):
        return {str(v) for v in node.values}
    if isinstance(node, mi.ListType | mi.VarTupleType):
        return _range(node.item_type)
    return None


@pytest.mark.parametrize("path", DOCUMENTED_LEAVES)
def test_the_documented_range_is_the_code_s(path: str) -> None:
    cell = _cell(path, "range")
    for leaf in _leaves(path):
        expected = _range(leaf.field.type)
        if isinstance(expected, str):
            assert cell == expected, f"docs/config.md: {path}: range is {expected!r}, not {cell!r}"
        elif isinstance(expected, set):
            assert set(backticked(cell)) == expected, (
                f"docs/config.md: {path}: the range lists {sorted(set(backticked(cell)))},"
                f" the code allows {sorted(expected)}"
            )


# -- stdio lines: docs/stdio.md -----------------------------------------------------

_LINE_HEADING = re.compile(r"^(stdin|stdout|inbound) `(\w+)`$")


def _line_structs() -> dict[str, list[type[msgspec.Struct]]]:
    """Every line type of ``_stdio_lines`` as ``"stdin message"``, with its structs.

    stdin: the ``LINES`` table. A tagged struct of the module whose tag is a
    stdin type is ``inbound``'s output of that type (documented with it); any
    other tag is a line of its own: ``stdout`` (``sent``, ...) or ``inbound``
    (``dropped``, which ends in ``Out`` like the other ``inbound`` lines).
    """
    found: dict[str, list[type[msgspec.Struct]]] = {
        f"stdin {kind}": [cls] for kind, cls in stdio_lines.LINES.items()
    }
    for name, cls in vars(stdio_lines).items():
        if not (inspect.isclass(cls) and issubclass(cls, msgspec.Struct)):
            continue
        tag = cls.__struct_config__.tag
        if cls.__module__ != stdio_lines.__name__ or not isinstance(tag, str):
            continue
        if tag in stdio_lines.LINES:
            found[f"stdin {tag}"].append(cls)
        else:
            found[f"{'inbound' if name.endswith('Out') else 'stdout'} {tag}"] = [cls]
    return found


LINE_STRUCTS = _line_structs()


def _line_sections() -> dict[str, set[str]]:
    """The fields each line type's section of docs/stdio.md lists, by ``"stdin message"``."""
    found = {}
    for title, body in sections(doc("stdio.md")).items():
        if match := _LINE_HEADING.match(title.strip()):
            found[f"{match[1]} {match[2]}"] = documented(body, "field")
    return found


LINE_SECTIONS = _line_sections()


def test_every_stdio_line_type_has_a_section() -> None:
    missing = set(LINE_STRUCTS) - set(LINE_SECTIONS)
    assert not missing, _missing(
        "line types without a section",
        "docs/stdio.md",
        missing,
        "add a heading like ### stdin `message` with a `| field |` table",
    )
    stale = set(LINE_SECTIONS) - set(LINE_STRUCTS)
    assert not stale, _missing("sections of no line type", "docs/stdio.md", stale, "remove them")


def _line_fields(structs: list[type[msgspec.Struct]]) -> Shape:
    leaves, parents = [], set()
    for cls in structs:
        s = contracts.of(cls)
        leaves += s.leaves
        parents |= s.parents
    return Shape(leaves, parents)


@pytest.mark.parametrize("line", sorted(set(LINE_STRUCTS) & set(LINE_SECTIONS)))
def test_every_stdio_field_is_documented_and_every_documented_one_exists(line: str) -> None:
    code = _line_fields(LINE_STRUCTS[line])
    expected = code.paths | {"type"}  # the tag, on every line
    listed = LINE_SECTIONS[line]
    missing = expected - listed
    assert not missing, _missing(
        f"fields of {line} lines without a row", "docs/stdio.md", missing, "add a `| field |` row"
    )
    stale = listed - expected - code.parents
    assert not stale, _missing(
        f"rows of {line} for fields the code does not have", "docs/stdio.md", stale, "remove them"
    )


# -- events: docs/events.md -----------------------------------------------------------

_EVENT_HEADING = re.compile(r"^`(\w+)`$")
EVENTS_DOC = sections(doc("events.md"))
EVENT_SECTIONS = {
    match[1]: documented(body, "field")
    for title, body in EVENTS_DOC.items()
    if (match := _EVENT_HEADING.match(title.strip()))
}
COMMON = contracts.of(Event).paths  # every event's own fields (``chat``)


def test_every_event_type_has_a_section() -> None:
    names = {cls.__name__ for cls in EVENT_TYPES}
    missing = names - set(EVENT_SECTIONS)
    assert not missing, _missing(
        "event types without a section",
        "docs/events.md",
        missing,
        "add a heading like ### `MessageReceived` with a `| field |` table",
    )
    stale = set(EVENT_SECTIONS) - names
    assert not stale, _missing("sections of no event type", "docs/events.md", stale, "remove them")


def test_the_fields_of_every_event_are_documented_once() -> None:
    listed = documented(EVENTS_DOC["Every event"], "field")
    assert listed == COMMON | {"type"}, (
        f"docs/events.md: the 'Every event' table lists {sorted(listed)},"
        f" the code's common fields are {sorted(COMMON | {'type'})}"
    )


@pytest.mark.parametrize("event", [cls for cls in EVENT_TYPES if cls.__name__ in EVENT_SECTIONS])
def test_every_event_field_is_documented_and_every_documented_one_exists(
    event: type[Event],
) -> None:
    code = contracts.of(event)
    expected = code.paths - COMMON
    listed = EVENT_SECTIONS[event.__name__]
    missing = expected - listed
    assert not missing, _missing(
        f"fields of {event.__name__} without a row",
        "docs/events.md",
        missing,
        "add a `| field |` row in its section",
    )
    stale = listed - expected - code.parents
    assert not stale, _missing(
        f"rows of {event.__name__} for fields the code does not have",
        "docs/events.md",
        stale,
        "remove them",
    )


def test_the_log_table_columns_are_documented() -> None:
    db = sqlite3.connect(":memory:")
    db.executescript(SCHEMA)
    columns = {row[1] for row in db.execute("PRAGMA table_info(events)")}
    listed = documented(EVENTS_DOC["The log table"], "column")
    assert listed == columns, (
        f"docs/events.md: 'The log table' lists {sorted(listed)},"
        f" the events table has {sorted(columns)}"
    )


# -- the command line: docs/cli.md ----------------------------------------------------

CLI_DOC = sections(doc("cli.md"))
_PROGS = {"python -m pipeline ": "", "python ": ""}
_OPTION = re.compile(r"^(--[a-z][a-z-]*)|^([A-Z]+)…?$")


def _command(prog: str) -> str:
    """``python -m pipeline run`` -> ``run``; ``python replay.py apply`` -> ``replay.py apply``."""
    for head in _PROGS:
        if prog.startswith(head):
            return prog[len(head) :]
    return prog


COMMANDS = {
    _command(prog): parser
    for prog, parser in parsers().items()
    if prog != "python -m pipeline"  # only the subcommands' names: each has its section
}


def _options(parser: argparse.ArgumentParser) -> set[str]:
    """Every option (its longest spelling) and positional (its metavar) but ``--help``."""
    found = set()
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        if action.option_strings:
            found.add(max(action.option_strings, key=len))
        else:
            found.add(str(action.metavar or action.dest.upper()))
    return found


def _documented_options(command: str) -> set[str]:
    found = set()
    for row in rows(CLI_DOC.get(f"`{command}`", ""), "option"):
        for name in row.names:
            if match := _OPTION.match(name.split(" ")[0]):
                found.add(match[1] or match[2])
    return found


def test_every_command_has_a_section() -> None:
    missing = {c for c in COMMANDS if f"`{c}`" not in CLI_DOC}
    assert not missing, _missing(
        "commands without a section",
        "docs/cli.md",
        missing,
        "add a heading like ## `run` with an `| option |` table",
    )


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_option_is_documented_and_every_documented_one_exists(command: str) -> None:
    code = _options(COMMANDS[command])
    listed = _documented_options(command)
    missing = code - listed
    assert not missing, _missing(
        f"options of {command} without a row", "docs/cli.md", missing, "add an `| option |` row"
    )
    stale = listed - code
    assert not stale, _missing(
        f"rows of {command} for options it does not take", "docs/cli.md", stale, "remove them"
    )


# Prefixes of the environment variables the code reads (a constant of another shape,
# e.g. ``EXIT_NEEDS_OWNER``, is no variable).
_ENV_PREFIXES = ("WABOT_", "PERPLEXITY_", "LLM_", "TRANSCRIPTION_", "TTS_", "NEONIZE_")
_ENV_NAMES = {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"}
_ENV = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$")


def _environment_read() -> set[str]:
    """The variable names written as strings in the production code."""
    root = contracts.ROOT
    files = [root / "replay.py"]
    files += [
        f for room in ("pipeline", "events", "projections") for f in (root / room).rglob("*.py")
    ]
    found = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
                if _ENV.match(text) and (text.startswith(_ENV_PREFIXES) or text in _ENV_NAMES):
                    found.add(text)
    return found


def test_every_environment_variable_is_documented() -> None:
    code = _environment_read()
    listed = documented(CLI_DOC["Environment"], "variable")
    missing = code - listed
    assert not missing, _missing(
        "environment variables the code reads without a row",
        "docs/cli.md",
        missing,
        "add a `| variable |` row under Environment",
    )
    stale = listed - code
    assert not stale, _missing(
        "rows for variables the code never reads", "docs/cli.md", stale, "remove them"
    )


_COUNTS = {"eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12}


def test_the_variables_read_from_env_are_those_the_docs_and_env_example_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/cli.md: "The first N may also be set in `.env`"; .env.example lists them."""
    asked: list[str] = []
    read = Environment.get

    def get(self: Environment, name: str) -> str | None:
        asked.append(name)
        return read(self, name)

    monkeypatch.setattr(Environment, "get", get)
    for name in _environment_read():
        monkeypatch.delenv(name, raising=False)
    app = tmp_path / "app.json"
    app.write_text('{"whatsapp": {"phone_number": "491700000000"}, "web": {"enabled": true}}')
    load_config(app, environ={"PERPLEXITY_API_KEY": "pplx-test"})
    store_dir(None, None)
    log_url(None, None, None)

    table = [row.names[0] for row in rows(CLI_DOC["Environment"], "variable")]
    said = re.search(r"The first (\w+) may also be set in `\.env`", CLI_DOC["Environment"])
    assert said is not None
    from_env_file = table[: _COUNTS[said[1]]]
    example_text = (contracts.ROOT / ".env.example").read_text()
    example = re.findall(r"^([A-Z][A-Z0-9_]*)=", example_text, re.M)
    assert sorted(set(asked)) == sorted(from_env_file)
    assert example == from_env_file


# -- the docs stand on their own ------------------------------------------------------

_OUTSIDE_NOTES = "DESIGN" + ".md"  # spelled apart, so this file does not name it


def _repository_files() -> list[str]:
    """The files of the work tree: tracked, or new and not ignored (so no store, no venv)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=contracts.ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return [name for name in listed.stdout.splitlines() if (contracts.ROOT / name).is_file()]


def test_nothing_points_at_design_notes_outside_the_repository() -> None:
    pointing = []
    for name in _repository_files():
        try:
            text = (contracts.ROOT / name).read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # images, databases
        pointing += [
            f"{name}:{n}" for n, line in enumerate(text.splitlines(), 1) if _OUTSIDE_NOTES in line
        ]
    assert not pointing, (
        f"{_OUTSIDE_NOTES} is not in the repository; point at docs/ (file and section) instead:"
        f" {', '.join(pointing)}"
    )


_LINK = re.compile(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)")
_CODE_SPAN = re.compile(r"`[^`\n]+`")  # Markdown written as an example, not a link


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@pytest.mark.parametrize("name", sorted(p.name for p in contracts.DOCS.glob("*.md")))
def test_every_link_of_the_docs_leads_somewhere(name: str) -> None:
    broken = []
    for target, anchor in _LINK.findall(_CODE_SPAN.sub("", doc(name))):
        if target.startswith(("http://", "https://")):
            continue
        path = (contracts.DOCS / target) if target else contracts.DOCS / name
        if not path.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and anchor not in {_anchor(t) for t in sections(path.read_text())}:
            broken.append(f"{target}#{anchor} (no such heading)")
    assert not broken, f"docs/{name}: broken links: {', '.join(broken)}"


def test_the_keys_of_stats_json_are_documented() -> None:
    keys = set(Report.__struct_fields__)
    missing = keys - set(backticked(CLI_DOC["`stats`"]))
    assert not missing, _missing(
        "keys of `stats --json` not named", "docs/cli.md, `stats`", missing, "name them"
    )
