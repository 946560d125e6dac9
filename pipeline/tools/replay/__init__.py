"""``python replay.py``: a chat's LLM calls composed again, checked, or re-run with new settings.

Reads the log read-only and never talks to WhatsApp; re-runs write only an
experiment file and the response cache under ``STORE/replays/``.
"""

from pipeline.tools.replay._cli import main
from pipeline.tools.replay._files import forget_replays
from pipeline.tools.replay._judge import VERDICT_WORDS

__all__ = ["VERDICT_WORDS", "forget_replays", "main"]
