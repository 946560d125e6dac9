"""``set_reminder``, ``list_reminders``, ``cancel_reminder``: the model keeps reminders
for the chat it is talking in.

A reminder is a ``ReminderSet`` recorded with the call that set it; the
scheduler sends it when due (``pipeline.daemon._reminding``). Every tool acts
on its own chat only: the chat is the scene's, never an argument, so no call
can reach another chat, list another chat's reminders or cancel them. Times
are read by ``_when`` (naive = ``vitality.timezone``); a refused time is an
error result the model can relay. Offered where ``tools.reminders`` is true.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from events.model import ReminderCancelled, ReminderSet
from pipeline.config import AppConfig
from pipeline.toolbox import _when
from pipeline.toolbox._tool import Result, Scene, Tool, refused
from projections import aliases, reminders

TEXT_CHARS = 1000
# Room a reminder's message keeps beside its text (the line of a missed one).
MESSAGE_ROOM = 100


def _applies(config: AppConfig, is_group: bool) -> bool:
    return config.tools.reminders


def new_id(scene: Scene, taken: dict[str, Any]) -> str:
    """A short id for a reminder, the same whenever the same call is answered again
    (it derives from the call), and not one of ``taken``."""
    for n in range(100):
        seed = f"{scene.chat}|{scene.call_id}|{scene.tool_call_id}|{scene.now}|{n}"
        digest = hashlib.blake2b(seed.encode(), digest_size=5).digest()
        found = "R" + base64.b32encode(digest).decode().rstrip("=")
        if found not in taken:
            return found
    raise RuntimeError("no free reminder id")  # 100 collisions of 40 bits: a bug


def _set_reminder(scene: Scene, args: dict[str, Any]) -> Result:
    text = str(args["text"]).strip()
    if not text:
        return refused("set_reminder: the text is empty")
    room = scene.config.whatsapp.max_message_chars - MESSAGE_ROOM
    if len(text) > room:  # a reminder is one message, never split
        return refused(f"set_reminder: the text is longer than {room} characters")
    zone = scene.config.vitality.zone
    at = _when.parse(str(args["at"]), zone, scene.now)
    if isinstance(at, str):
        return refused(f"set_reminder: {at}")
    reminder_id = new_id(scene, scene.view.reminders.pending)
    event = ReminderSet(
        chat=scene.chat,
        reminder_id=reminder_id,
        at=at,
        text=text,
        call_id=scene.call_id,
        tool_call_id=scene.tool_call_id,
    )
    return Result(output={"id": reminder_id, "at": _when.iso(at, zone)}, events=[event])


def _list_reminders(scene: Scene, args: dict[str, Any]) -> Result:
    zone = scene.config.vitality.zone
    mine = reminders.of_chat(scene.view.reminders, _chats(scene))
    return Result(
        output=[{"id": r.reminder_id, "at": _when.iso(r.at, zone), "text": r.text} for r in mine]
    )


def _cancel_reminder(scene: Scene, args: dict[str, Any]) -> Result:
    reminder_id = str(args["id"]).strip()
    found = scene.view.reminders.pending.get(reminder_id)
    if found is None or found.chat not in _chats(scene):
        return refused(f"cancel_reminder: no pending reminder {reminder_id!r} in this chat")
    event = ReminderCancelled(chat=scene.chat, reminder_id=reminder_id, call_id=scene.call_id)
    return Result(output={"ok": True, "cancelled": reminder_id}, events=[event])


def _chats(scene: Scene) -> set[str]:
    """This chat under every id it goes by (a person's phone JID and ``@lid``)."""
    return aliases.forms(scene.view.aliases, scene.chat) | {scene.chat}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


SET = Tool(
    name="set_reminder",
    description=(
        "Send a reminder to this chat at a given time. 'at' is ISO 8601, with an offset "
        "or in the owner's local time zone when it has none; it must be in the future "
        "and at most a year ahead. Returns the reminder's id and its time with offset."
    ),
    parameters=_object(
        {
            "at": {
                "type": "string",
                "description": "When, e.g. 2026-12-08T09:00:00+01:00 or 2026-12-08T09:00:00.",
                "maxLength": 64,
            },
            "text": {
                "type": "string",
                "description": "What the reminder says.",
                "maxLength": TEXT_CHARS,
            },
        }
    ),
    handler=_set_reminder,
    applies=_applies,
)

LIST = Tool(
    name="list_reminders",
    description="The reminders pending in this chat: their ids, times and texts.",
    parameters=_object({}),
    handler=_list_reminders,
    applies=_applies,
)

CANCEL = Tool(
    name="cancel_reminder",
    description="Cancel one of this chat's pending reminders, by its id (R…).",
    parameters=_object(
        {"id": {"type": "string", "description": "The reminder's id.", "maxLength": 32}}
    ),
    handler=_cancel_reminder,
    applies=_applies,
)
