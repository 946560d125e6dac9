"""What the daemon's workers need from it, as protocols: all swappable in tests."""

from __future__ import annotations

from typing import Protocol

from pipeline.config import LoadedConfig
from pipeline.llm import LlmClient


class Planning(Protocol):
    """Enough to plan replies: the config in force, message ids, a nudge to the sender."""

    @property
    def config(self) -> LoadedConfig: ...
    def new_wa_id(self) -> str | None: ...
    def wake_sender(self) -> None: ...


class Answering(Planning, Protocol):
    """Planning plus the LLM client for the config in force."""

    def llm(self) -> LlmClient: ...
