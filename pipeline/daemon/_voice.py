"""Whether a reply is spoken, as pure functions of the config and the burst it answers.

``voice_replies.mode`` (or the entity's own ``voice_replies``) says: ``never``,
``always``, or ``mirror``: a burst with a voice note in it is answered with
one, as people answer in kind. The plan names the model and the voice in
force when the answer came, so the speech request is in the log (write-ahead,
like an LLM call) before the sender makes it.
"""

from __future__ import annotations

from collections.abc import Sequence

from events.model import SpeechPlan
from pipeline.config import AppConfig, Entity, VoiceMode
from projections.queue import Item


def speaks(mode: VoiceMode, run: Sequence[Item]) -> bool:
    """Whether the answer to ``run`` is spoken under ``mode``."""
    if mode == "mirror":
        return any(item.media is not None and item.media.kind == "voice" for item in run)
    return mode == "always"


def speech_plan(config: AppConfig, entity: Entity, run: Sequence[Item]) -> SpeechPlan | None:
    """The speech request of the answer to ``run`` in ``entity``'s chat, or None: text."""
    if not speaks(config.voice_mode(entity), run):
        return None
    voice = config.voice_replies
    return SpeechPlan(model=voice.model, voice=voice.voice)
