"""The tool catalogue: what a chat is offered, and every way a call can be wrong
becoming an error result the model reads (never an exception)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from events.model import ToolCall
from pipeline import toolbox
from pipeline.config import config_from_dict
from projections.fold import States

CONFIG = config_from_dict({"whatsapp": {"phone_number": "491700000000"}})
SCENE = toolbox.Scene(States(), "g@g.us", 0.0, CONFIG)


def run(name: str, arguments: str, allowed: tuple[str, ...] = ("stay_silent",)) -> toolbox.Result:
    return toolbox.run(SCENE, ToolCall(id="t", name=name, arguments=arguments), allowed)


@pytest.mark.parametrize(
    ("silence", "group", "direct"),
    [
        ("never", [], []),
        ("groups", ["stay_silent"], []),
        ("always", ["stay_silent"], ["stay_silent"]),
    ],
)
def test_stay_silent_is_offered_where_tools_silence_says(
    silence: str, group: list[str], direct: list[str]
) -> None:
    config = config_from_dict(
        {
            "whatsapp": {"phone_number": "491700000000"},
            "tools": {"silence": silence, "reminders": False, "memory": False},
        }
    )
    assert (toolbox.offered(config, True), toolbox.offered(config, False)) == (group, direct)


def test_every_spec_is_a_closed_object_schema() -> None:
    for tool in toolbox.TOOLS.values():
        spec = tool.spec()
        assert set(spec) == {"name", "description", "parameters"}
        assert spec["parameters"]["type"] == "object"
        assert spec["parameters"]["additionalProperties"] is False
        assert set(spec["parameters"]["required"]) <= set(spec["parameters"]["properties"])
    assert toolbox.specs(["gone", "stay_silent"]) == [toolbox.TOOLS["stay_silent"].spec()]


@pytest.mark.parametrize(
    ("name", "arguments", "error"),
    [
        ("nope", "{}", "unknown tool 'nope' (the tools here: stay_silent)"),
        ("stay_silent", "{", "stay_silent: the arguments are not JSON (Expecting property name"),
        ("stay_silent", "[]", "stay_silent: the arguments must be a JSON object"),
        ("stay_silent", "{}", "stay_silent: missing argument 'reason'"),
        ("stay_silent", '{"reason": 1}', "stay_silent: argument 'reason' must be a string"),
        ("stay_silent", '{"reason": true}', "stay_silent: argument 'reason' must be a string"),
        ("stay_silent", '{"reason": "x", "y": 1}', "stay_silent: unknown argument 'y'"),
        (
            "stay_silent",
            json.dumps({"reason": "x" * 501}),
            "stay_silent: argument 'reason' is longer",
        ),
    ],
)
def test_a_bad_call_is_an_error_result(name: str, arguments: str, error: str) -> None:
    result = run(name, arguments)
    assert result.error
    assert result.output["error"].startswith(error)
    assert (result.events, result.silent) == ([], None)


def test_a_tool_not_offered_in_this_request_is_refused() -> None:
    result = run("stay_silent", '{"reason": "x"}', allowed=())
    assert result.output == {"error": "unknown tool 'stay_silent' (the tools here: none)"}


def test_a_handler_that_raises_is_an_error_result(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(scene: toolbox.Scene, args: dict[str, Any]) -> toolbox.Result:
        raise KeyError("bug")

    tool = toolbox.TOOLS["stay_silent"]
    monkeypatch.setitem(
        toolbox.TOOLS,
        "stay_silent",
        toolbox.Tool(tool.name, tool.description, tool.parameters, broken, tool.applies),
    )
    assert run("stay_silent", '{"reason": "x"}').output == {"error": "stay_silent failed: KeyError"}


def test_stay_silent_gives_the_reason_with_its_whitespace_collapsed() -> None:
    result = run("stay_silent", json.dumps({"reason": " just\n banter "}))
    assert (result.error, result.silent, result.output) == (
        False,
        "just banter",
        {"ok": True, "silent": True},
    )
