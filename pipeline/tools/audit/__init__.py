"""``python -m pipeline audit``: what the bot said in a chat, to whom, and why."""

from pipeline.tools.audit._command import run_audit
from pipeline.tools.audit._render import (
    attachment_facts,
    audit_doc,
    audit_text,
    effect_line,
    event_object,
    headline,
    outcome,
    unused,
    who,
)

__all__ = [
    "attachment_facts",
    "audit_doc",
    "audit_text",
    "effect_line",
    "event_object",
    "headline",
    "outcome",
    "run_audit",
    "unused",
    "who",
]
