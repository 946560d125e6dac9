"""``stay_silent``: the model decides this message needs no answer.

In a group most messages are not for the bot; a model that may stay silent
answers when it is useful, not whenever it is mentioned. The decision ends the
turn: no reply, a ``ReplyWithheld`` with the model's reason (the turn records
it, as only it knows the messages decided), and the messages leave the queue.
Where it is offered is ``tools.silence``: ``never``, ``groups``, ``always``.
"""

from __future__ import annotations

from typing import Any

from pipeline.config import AppConfig
from pipeline.toolbox._tool import Result, Scene, Tool

REASON_CHARS = 500


def _applies(config: AppConfig, is_group: bool) -> bool:
    silence = config.tools.silence
    return silence == "always" or (silence == "groups" and is_group)


def _stay_silent(scene: Scene, args: dict[str, Any]) -> Result:
    reason = " ".join(str(args["reason"]).split()) or "no reason given"
    return Result(output={"ok": True, "silent": True}, silent=reason)


TOOL = Tool(
    name="stay_silent",
    description=(
        "Send no reply to the latest message(s). Call this when a message in this chat "
        "is not addressed to you or an answer would add nothing; say why in a few words."
    ),
    parameters={
        "type": "object",
        "properties": {
            "reason": {
                "type": "string",
                "description": "Why no reply is needed, in a few words.",
                "maxLength": REASON_CHARS,
            }
        },
        "required": ["reason"],
        "additionalProperties": False,
    },
    handler=_stay_silent,
    applies=_applies,
)
