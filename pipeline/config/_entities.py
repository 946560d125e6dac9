"""The monitored chats: a tagged union on ``type`` (user, group, self)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Literal

import msgspec

from events.jid import (
    GROUP_SERVER,
    LID_SERVER,
    PN_SERVER,
    InvalidJid,
    is_group,
    normalize,
    phone_digits,
)
from pipeline.config._sections import FieldError, Section, VoiceMode
from projections.group_talk import KEEP as MAX_CONTEXT_MESSAGES


class Trigger(Section, frozen=True, kw_only=True):
    """When a group message is for the bot; ``mention`` also fires on a keyword."""

    mode: Literal["always", "mention", "keyword"] = "mention"
    keywords: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.mode == "keyword" and not self.keywords:
            raise FieldError("keywords", 'trigger mode "keyword" needs at least one keyword')
        for i, word in enumerate(self.keywords):
            if not word.strip():
                raise FieldError(f"keywords[{i}]", "must not be empty")

    def matched(self, text: str) -> str | None:
        """The first keyword ``text`` holds as a word of its own (any case), or None."""
        for word in self.keywords:
            if re.search(rf"(?<!\w){re.escape(word.strip())}(?!\w)", text, re.IGNORECASE):
                return word
        return None


class GroupsConfig(Section, frozen=True, kw_only=True):
    """How the bot listens in groups (docs/config.md, ``groups``); a group entity may
    set any of these for itself (``GroupOverrides``)."""

    # Messages since the bot last answered that go to the model as context (0: none).
    context_messages: Annotated[int, msgspec.Meta(ge=0, le=MAX_CONTEXT_MESSAGES)] = 20
    # Quoting one of the bot's messages triggers a mention group, as a mention does.
    reply_to_bot_is_mention: bool = True
    # After the bot answered someone, their next messages within this window trigger too.
    listen_after_mention_seconds: Annotated[float, msgspec.Meta(ge=0, le=24 * 3600)] = 0.0


class GroupOverrides(Section, frozen=True, kw_only=True):
    """A group entity's own ``groups`` keys; a key left out is the global one."""

    context_messages: Annotated[int, msgspec.Meta(ge=0, le=MAX_CONTEXT_MESSAGES)] | None = None
    reply_to_bot_is_mention: bool | None = None
    listen_after_mention_seconds: Annotated[float, msgspec.Meta(ge=0, le=24 * 3600)] | None = None

    def over(self, base: GroupsConfig) -> GroupsConfig:
        given = {k: v for k in self.__struct_fields__ if (v := getattr(self, k)) is not None}
        return msgspec.structs.replace(base, **given) if given else base


class EntityBase(Section, frozen=True, kw_only=True, tag_field="type"):
    """What every entity has; missing ``prompt``/``persona`` fall back to ``defaults``."""

    name: str | None = None
    prompt: str | None = None
    persona: str | None = None
    # Before each LLM call, show the owner what is sent (in the owner's own chat).
    debug: bool = False
    # Replies here spoken as voice notes, over ``voice_replies.mode``.
    voice_replies: VoiceMode | None = None

    def __post_init__(self) -> None:
        if self.name is not None and not self.name.strip():
            raise FieldError("name", "must not be empty")


class UserEntity(EntityBase, frozen=True, kw_only=True, tag="user"):
    """A direct chat, given by ``phone`` (``+``, spaces and dashes ignored) or ``jid``."""

    phone: str | None = None
    jid: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if (self.phone is None) == (self.jid is None):
            raise FieldError("", 'a "user" entity needs exactly one of "phone" and "jid"')
        if self.phone is not None:
            _checked(phone_digits, self.phone, "phone")
        elif self.jid is not None:
            server = _checked(normalize, self.jid, "jid").rpartition("@")[2]
            if server == GROUP_SERVER:
                raise FieldError("jid", f'{self.jid!r} is a group; use "type": "group"')
            if server not in (PN_SERVER, LID_SERVER):
                raise FieldError(
                    "jid", f"{self.jid!r} is not a person's JID (…@{PN_SERVER} or …@{LID_SERVER})"
                )

    def chat_jid(self) -> str:
        return normalize(self.phone if self.phone is not None else str(self.jid))


class GroupEntity(EntityBase, frozen=True, kw_only=True, tag="group"):
    jid: str
    trigger: Trigger = Trigger()
    groups: GroupOverrides = GroupOverrides()

    def __post_init__(self) -> None:
        super().__post_init__()
        if not is_group(_checked(normalize, self.jid, "jid")):
            raise FieldError("jid", f"{self.jid!r} is not a group JID (…@{GROUP_SERVER})")

    def chat_jid(self) -> str:
        return normalize(self.jid)


class SelfEntity(EntityBase, frozen=True, kw_only=True, tag="self"):
    """The owner's own "note to self" chat; its JID is ``AppConfig.owner_jid``."""


Entity = UserEntity | GroupEntity | SelfEntity


def _checked(check: Callable[[str], str], value: str, field: str) -> str:
    """``check(value)``, with InvalidJid turned into a FieldError on ``field``."""
    try:
        return check(value)
    except InvalidJid as exc:
        raise FieldError(field, str(exc)) from None
