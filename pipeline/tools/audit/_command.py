"""The ``audit`` command: read the log, resolve CHAT, print the timeline."""

from __future__ import annotations

from pathlib import Path

import msgspec

from pipeline.config import parse_config
from pipeline.tools._args import latest_config, resolve_chat
from pipeline.tools._where import Where, open_tool_reader
from pipeline.tools.audit._render import audit_doc, audit_text
from projections.runner import Runner
from projections.timeline import audit


def run_audit(
    store: Path | Where, chat_arg: str, *, config: Path | None, since: float | None, as_json: bool
) -> int:
    with open_tool_reader(store) as log:
        app = parse_config(config) if config is not None else latest_config(log.read(chats=[""]))
        states = Runner.start(log).states  # which chat a person's other ids name
        chat = resolve_chat(chat_arg, app, log.chats(), states)
        result = audit(log.read(chats=[chat, ""]), chat)
    if since is not None:
        result.turns = [t for t in result.turns if t.ts >= since]
        result.records = [r for r in result.records if r.ts >= since]
    if as_json:
        print(msgspec.json.encode(audit_doc(result)).decode())
        return 0
    entity = app.find_entity(chat) if app is not None else None
    title = f"{entity.name} ({chat})" if entity is not None and entity.name else chat
    print(audit_text(result, title))
    return 0
