"""The tree is the architecture: imports point down, tools never load the daemon.

Layers, lowest first: ``events`` (what happened, the log) -> ``projections``
(pure folds) -> pipeline's shared rooms (``config``, ``llm``, ``transport``,
``logs``, ``paths``) -> ``pipeline.daemon`` (what runs) and ``pipeline.tools``
(what reads the log offline), which never import each other -> the entry
points (``pipeline.cli``, ``replay.py``). Like httpx's guard on its exports,
these tests fail the moment a change breaks the shape.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import types
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("events", "projections", "pipeline")
SHARED = (
    "pipeline.config",
    "pipeline.llm",
    "pipeline.media",
    "pipeline.transport",
    "pipeline.logs",
    "pipeline.paths",
    "pipeline.store_lock",
    "pipeline.toolbox",
)
# A backstop, not a design rule: a module grows until its concept does, then becomes
# a package (the 400-line cap made rooms by size; issue 19 replaces it with concept rules).
MAX_LINES = 700
MAX_TOP_LEVEL = 8


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    found = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    found["replay"] = ROOT / "replay.py"
    return found


@cache
def imports(module: str) -> frozenset[str]:
    """The project modules ``module`` imports (at any depth of its code, lazy ones too)."""
    known = modules()
    tree = ast.parse(known[module].read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in names:
            # "from a.b import c" names module a.b, and a.b.c when c is a module.
            module_name = name
            while module_name and module_name not in known:
                module_name = module_name.rpartition(".")[0]
            if module_name:
                found.add(module_name)
    found.discard(module)
    return frozenset(found)


def reachable(start: str) -> set[str]:
    """Every project module loaded by importing ``start``, parents included."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        todo += imports(module)
    return seen


def _inside(module: str, *rooms: str) -> bool:
    return any(module == room or module.startswith(room + ".") for room in rooms)


def test_the_import_graph_is_read_from_the_real_tree() -> None:
    assert "pipeline.daemon._agent" in imports("pipeline.daemon")
    assert "events.protocol" in imports("events.sqlite._log")
    assert "pipeline.daemon" in reachable("pipeline.cli")


@pytest.mark.parametrize(
    ("layer", "may_import"),
    [
        ("events", ("events",)),
        ("projections", ("events", "projections")),
        *((room, ("events", "projections", *SHARED)) for room in SHARED),
        ("pipeline.daemon", ("events", "projections", *SHARED, "pipeline.daemon")),
        ("pipeline.tools", ("events", "projections", *SHARED, "pipeline.tools")),
    ],
)
def test_imports_point_down(layer: str, may_import: tuple[str, ...]) -> None:
    wrong = sorted(
        f"{module} imports {target}"
        for module in modules()
        if _inside(module, layer)
        for target in imports(module)
        # The bare "pipeline" package is only its docstring.
        if target != "pipeline" and not _inside(target, *may_import)
    )
    assert wrong == []


@pytest.mark.parametrize("tool", ["replay", "pipeline.tools", "pipeline.tools.replay"])
def test_no_offline_tool_loads_the_daemon(tool: str) -> None:
    loaded = reachable(tool)
    assert not {m for m in loaded if _inside(m, "pipeline.daemon", "pipeline.cli")}
    assert not {m for m in loaded if _inside(m, "pipeline.transport.neonize")}


def test_the_inbound_tool_loads_the_whatsapp_conversion_but_no_daemon() -> None:
    """``inbound`` reads neonize's protobufs, so it alone of the tools loads neonize."""
    loaded = reachable("pipeline.tools._inbound")
    assert not {m for m in loaded if _inside(m, "pipeline.daemon", "pipeline.cli")}
    assert "pipeline.transport.neonize._convert" in loaded


def test_replay_py_loads_no_daemon_module_when_run() -> None:
    code = "import sys, replay; print(sorted(m for m in sys.modules if m.startswith('pipeline')))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "pipeline.tools.replay" in out
    assert "pipeline.daemon" not in out
    assert "pipeline.cli" not in out


def test_only_the_command_line_imports_the_whatsapp_transport() -> None:
    importers = {
        m
        for m in modules()
        if not _inside(m, "pipeline.transport.neonize")
        and any(_inside(t, "pipeline.transport.neonize") for t in imports(m))
    }
    assert importers == {"pipeline.cli", "pipeline.tools._inbound"}


def _rooms() -> list[str]:
    return sorted(
        m
        for m, path in modules().items()
        if path.name == "__init__.py" and m not in PACKAGES and m != "tests"
    )


@pytest.mark.parametrize("room", _rooms())
def test_every_room_lists_its_public_names(room: str) -> None:
    if room == "pipeline.transport.neonize":
        pytest.importorskip("tests.neonize_quiet")  # neonize's import leaks a pipe otherwise
    module = importlib.import_module(room)
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"
    }
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{room} has no __all__"
    assert set(exported) == public


def test_private_modules_are_named_with_an_underscore_inside_rooms() -> None:
    """A room's public face is its ``__init__``; everything else in it is private."""
    rooms = _rooms()
    public_inside = sorted(
        m
        for m, path in modules().items()
        for room in rooms
        if m.startswith(room + ".")
        and m.count(".") == room.count(".") + 1
        and path.name != "__init__.py"
        and not path.stem.startswith("_")
    )
    assert public_inside == []


def import_cycles() -> list[list[str]]:
    """Groups of modules that import each other, directly or around a loop (Tarjan).

    A module's edge to its own parent package is left out: importing a
    submodule loads the package first by the language's rules, not by design.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in imports(module):
            if module.startswith(target + "."):
                continue
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = [stack.pop()]
            while group[-1] != module:
                group.append(stack.pop())
            if len(group) > 1:
                cycles.append(sorted(group))

    for module in sorted(modules()):
        if module not in index:
            visit(module)
    return cycles


def test_no_import_cycle_anywhere() -> None:
    """Two modules that import each other are one concept split in two, or a layer turned."""
    assert import_cycles() == []


def test_the_cycle_finder_finds_a_cycle(monkeypatch: pytest.MonkeyPatch) -> None:
    real = imports

    def looped(module: str) -> frozenset[str]:
        if module == "events.model":
            return real(module) | {"events.protocol"}
        return real(module)

    monkeypatch.setitem(globals(), "imports", looped)
    [cycle] = import_cycles()
    assert {"events.model", "events.protocol"} <= set(cycle)


# The daemon's stages: its rules as pure functions of the view, the config and now
# (functional core); the loops and executors around them do the I/O (imperative shell).
STAGES = (
    "pipeline.daemon._decide",
    "pipeline.daemon._timetable",
    "pipeline.daemon._outreach",
    "pipeline.daemon._turn",
    "pipeline.daemon._loop",
    "pipeline.daemon._attachments",
    "pipeline.daemon._replies",
    "pipeline.daemon._voice",
    "pipeline.daemon._commands",
    "pipeline.daemon._status",
    "pipeline.daemon._reminding",
)
# What does I/O, waits, or reads the clock or chance: never imported by a stage.
IO_LIBRARIES = frozenset(
    {
        *("anyio", "asyncio", "threading", "subprocess", "time", "uuid", "random"),
        *("httpx", "socket", "sqlite3", "psycopg", "psycopg_pool", "neonize"),
        *("os", "shutil", "pathlib", "io", "logging", "structlog"),
    }
)
# What a stage may import of the project: the facts (events, folded states), the
# config, and the pure functions the shared rooms export (prompts, formats). The
# log's backends, the transport and the daemon's executors are not among them.
STAGE_MAY_IMPORT = (
    "events.model",
    "events.jid",
    "events.units",
    "events.protocol",
    "projections",
    "pipeline.config",
    "pipeline.llm",
    "pipeline.media",
    "pipeline.toolbox",
    *STAGES,
)


def io_imports(module: str) -> list[str]:
    """What ``module`` imports that does I/O: a library, or a project module outside
    what a stage may import."""
    tree = ast.parse(modules()[module].read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        found |= {name for name in names if name.split(".")[0] in IO_LIBRARIES}
    # (A module's own package is loaded first by the language's rules, not by design.)
    found |= {
        t
        for t in imports(module)
        if not _inside(t, *STAGE_MAY_IMPORT) and not module.startswith(t + ".")
    }
    return sorted(found)


@pytest.mark.parametrize("stage", STAGES)
def test_the_daemons_stages_import_no_io(stage: str) -> None:
    """A rule that can reach the log, the network or the clock is no longer a rule."""
    assert io_imports(stage) == []


def test_the_io_finder_finds_the_executors_io() -> None:
    assert "anyio" in io_imports("pipeline.daemon._dispatch")
    assert "pipeline.daemon._folded_log" in io_imports("pipeline.daemon._agent")
    assert "pipeline.transport" in io_imports("pipeline.daemon._sender")
    assert "httpx" in io_imports("pipeline.daemon._alerter")


def test_modules_stay_small() -> None:
    sizes = {m: len(p.read_text().splitlines()) for m, p in modules().items()}
    assert {m: n for m, n in sizes.items() if n > MAX_LINES} == {}


def test_the_top_level_of_pipeline_keeps_a_handful_of_modules() -> None:
    top = sorted(p.name for p in (ROOT / "pipeline").glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL, top
