"""``python -m pipeline audit``: what the bot said in a chat, to whom, and why."""

from pipeline.tools.audit._command import run_audit
from pipeline.tools.audit._render import audit_doc, audit_text, event_object, headline, who

__all__ = ["audit_doc", "audit_text", "event_object", "headline", "run_audit", "who"]
