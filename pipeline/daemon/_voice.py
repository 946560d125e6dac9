"""Whether a reply is spoken, as pure functions of the config and the burst it answers.

``voice_replies.mode`` (or the entity's own ``voice_replies``) says: ``never``,
``always``, or ``mirror``: a burst with a voice note in it is answered with
one, as people answer in kind. The plan names the model and the voice in
force when the answer came, so the speech request is in the log (write-ahead,
like an LLM call) before the sender makes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from events.model import SpeechPlan
from pipeline.config import AppConfig, Entity, LoadedConfig, VoiceMode
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


def spoken_chars(config: AppConfig) -> int:
    """How much of an answer is spoken: ``voice_replies.max_chars``, and no more than
    one message holds, since the words go as one text message should speaking fail."""
    return min(config.voice_replies.max_chars, config.whatsapp.max_message_chars)


def missing_speech_key(loaded: LoadedConfig) -> bool:
    """A reply would be spoken at OpenAI's endpoint with no key: every one would fail."""
    config = loaded.config
    host = urlsplit(config.voice_replies.base_url).hostname
    if host != "api.openai.com" or loaded.secrets.speech_key:
        return False
    return any(config.voice_mode(entity) != "never" for entity in config.monitored_entities)
