"""The tools the model may call, which of them a chat is offered, and running one call.

Adding a tool is one module with a ``TOOL`` and one line in ``TOOLS``. A call
is never trusted: an unknown tool, one not offered in this request, or
arguments that do not fit its schema become an error result the model reads,
and a handler that raises (a bug) too, so no call can end the turn or the
daemon.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from events.model import ToolCall
from pipeline.config import AppConfig
from pipeline.toolbox import _args, _memory, _reminders, _silence
from pipeline.toolbox._tool import Result, Scene, Tool, refused

TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in (
        _silence.TOOL,
        _reminders.SET,
        _reminders.LIST,
        _reminders.CANCEL,
        _memory.REMEMBER,
        _memory.FORGET,
    )
}


def offered(config: AppConfig, is_group: bool) -> list[str]:
    """The names of the tools this chat is offered under ``config``, in catalogue order."""
    return [name for name, tool in TOOLS.items() if tool.applies(config, is_group)]


def specs(names: Sequence[str]) -> list[dict[str, Any]]:
    """The definitions of the named tools (an unknown name, from an older log, is left out)."""
    return [TOOLS[name].spec() for name in names if name in TOOLS]


def run(scene: Scene, call: ToolCall, allowed: Sequence[str]) -> Result:
    """Run one call the model made, ``allowed`` being the tools its request offered."""
    tool = TOOLS.get(call.name)
    if tool is None or call.name not in allowed:
        names = ", ".join(allowed) or "none"
        return refused(f"unknown tool {call.name!r} (the tools here: {names})")
    args = _args.parse(call.arguments, tool.parameters)
    if isinstance(args, str):
        return refused(f"{call.name}: {args}")
    try:
        return tool.handler(scene, args)
    except Exception as exc:  # a bug in a handler: the model hears of it, the turn goes on
        return refused(f"{call.name} failed: {type(exc).__name__}")
