"""Conversation shape rules that every chat backend accepts.

Perplexity answers 400 "After the (optional) system message(s), user and
assistant roles should be alternating." and "Last message must have role
`user`."; some vLLM chat templates reject the same things. Reasoning models
prefix their answer with a ``<think>`` block that must not reach WhatsApp.
"""

from __future__ import annotations

import re

from events.model import ChatTurn

_THINK = re.compile(r"^\s*<think>.*?(?:</think>|\Z)\s*", re.DOTALL)


def normalize_turns(messages: list[ChatTurn]) -> list[ChatTurn]:
    """Return turns that alternate user/assistant after one system turn and end with user.

    All non-blank system text is hoisted into one leading turn, consecutive same-role
    turns are joined with a blank line, assistant turns before the first user
    turn are dropped and trailing assistant turns are cut. Idempotent.
    Raises ValueError when there is no user turn at all.
    """
    system = [m.content for m in messages if m.role == "system" and m.content.strip()]
    chat: list[ChatTurn] = []
    for turn in messages:
        if turn.role == "system" or (turn.role == "assistant" and not chat):
            continue
        if chat and chat[-1].role == turn.role:
            previous = chat[-1]
            content = f"{previous.content}\n\n{turn.content}"
            chat[-1] = ChatTurn(turn.role, content, previous.images + turn.images)
        else:
            chat.append(turn)
    if not chat:
        raise ValueError("an LLM request needs at least one user turn")
    # Replies the bot already sent after the last user message say nothing new.
    if chat[-1].role == "assistant":
        chat.pop()
    head = [ChatTurn("system", "\n\n".join(system))] if system else []
    return head + chat


def strip_think(text: str) -> str:
    """Remove a leading ``<think>…</think>`` block (or an unterminated one)."""
    return _THINK.sub("", text, count=1)
