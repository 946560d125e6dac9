"""``python replay.py``: a chat's LLM calls composed again, checked, or re-run with new settings.

Reads the log read-only and never talks to WhatsApp; re-runs write only an
experiment file and the response cache under ``STORE/replays/``.
"""

from pipeline.tools.replay._cli import main
from pipeline.tools.replay._forget import Cleared, forget_replays
from pipeline.tools.replay._saved import ExperimentDoc, read_doc

__all__ = ["Cleared", "ExperimentDoc", "forget_replays", "main", "read_doc"]
