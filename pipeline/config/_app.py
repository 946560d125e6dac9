"""The whole app.json as one typed value, and how chats are found in it."""

from __future__ import annotations

from datetime import datetime
from functools import cached_property

from events.jid import InvalidJid, normalize
from pipeline.config._entities import Entity, GroupEntity, GroupsConfig, SelfEntity
from pipeline.config._sections import (
    AlertsConfig,
    DefaultsConfig,
    FieldError,
    LimitsConfig,
    LlmConfig,
    LoggingConfig,
    MediaConfig,
    PollingConfig,
    RotationConfig,
    Section,
    SessionConfig,
    StoreConfig,
    TakeoverConfig,
    ToolsConfig,
    VitalityConfig,
    VoiceMode,
    VoiceRepliesConfig,
    WebConfig,
    WhatsAppConfig,
)


class UnknownChat(ValueError):
    """A CHAT argument that is neither a JID, a phone number nor an entity name."""


class AppConfig(Section, frozen=True, kw_only=True, dict=True):
    """The whole app.json; only ``whatsapp.phone_number`` is required."""

    whatsapp: WhatsAppConfig
    defaults: DefaultsConfig = DefaultsConfig()
    monitored_entities: tuple[Entity, ...] = ()
    polling: PollingConfig = PollingConfig()
    session_memory: SessionConfig = SessionConfig()
    rotation: RotationConfig = RotationConfig()
    vitality: VitalityConfig = VitalityConfig()
    llm: LlmConfig = LlmConfig()
    limits: LimitsConfig = LimitsConfig()
    takeover: TakeoverConfig = TakeoverConfig()
    logging: LoggingConfig = LoggingConfig()
    store: StoreConfig = StoreConfig()
    alerts: AlertsConfig = AlertsConfig()
    web: WebConfig = WebConfig()
    media: MediaConfig = MediaConfig()
    voice_replies: VoiceRepliesConfig = VoiceRepliesConfig()
    tools: ToolsConfig = ToolsConfig()
    groups: GroupsConfig = GroupsConfig()

    def __post_init__(self) -> None:
        # Building the indexes now rejects duplicate chats and names at load time.
        _ = self._by_jid, self._by_name

    @cached_property
    def owner_jid(self) -> str:
        """The owner's own chat: ``whatsapp.phone_number`` on s.whatsapp.net."""
        return normalize(self.whatsapp.phone_number)

    def local_midnight(self, now: float) -> float:
        """The start of today in ``vitality.timezone``: the bot's day, where daily budgets
        reset (the daemon, /status and the console's dashboard all count from it)."""
        zone = self.vitality.zone
        today = datetime.fromtimestamp(now, zone).date()
        return datetime(today.year, today.month, today.day, tzinfo=zone).timestamp()

    def entity_jid(self, entity: Entity) -> str:
        """The entity's chat in normal form; ``self`` is the owner's chat."""
        return self.owner_jid if isinstance(entity, SelfEntity) else entity.chat_jid()

    @cached_property
    def people(self) -> frozenset[str]:
        """The persons the bot serves, by the id the config gives each: the owner and
        every monitored direct chat (a group is no person)."""
        persons = (e for e in self.monitored_entities if not isinstance(e, GroupEntity))
        return frozenset({self.owner_jid, *(self.entity_jid(e) for e in persons)})

    def find_entity(self, chat_jid: str) -> Entity | None:
        """The monitored entity for a chat, in any JID spelling; None if unmonitored."""
        try:
            return self._by_jid.get(normalize(chat_jid))
        except InvalidJid:
            return None

    def entity_for(self, chat: str, sender_alt: str | None, is_group: bool) -> Entity | None:
        """The entity of a message's chat, also when a DM arrives under its other id."""
        entity = self.find_entity(chat)
        if entity is None and not is_group and sender_alt:
            entity = self.find_entity(sender_alt)
        return entity

    def resolve_chat(self, arg: str) -> str:
        """CHAT from the command line (entity name, JID or phone number) as a JID."""
        text = arg.strip()
        if (entity := self._by_name.get(text.casefold())) is not None:
            return self.entity_jid(entity)
        try:
            return normalize(text)
        except InvalidJid:
            names = ", ".join(repr(e.name) for e in self.monitored_entities if e.name)
            known = f"entity names: {names}" if names else "no entity has a name"
            raise UnknownChat(
                f"unknown chat {arg!r}: not a JID, a phone number or an entity name ({known})"
            ) from None

    def group_settings(self, group: GroupEntity) -> GroupsConfig:
        """The ``groups`` keys in force for ``group``: its own, else the global ones."""
        return group.groups.over(self.groups)

    def entity_prompt(self, entity: Entity) -> tuple[str, str]:
        """``(persona, prompt)`` for the entity, each falling back to ``defaults``."""
        persona = self.defaults.persona if entity.persona is None else entity.persona
        prompt = self.defaults.prompt if entity.prompt is None else entity.prompt
        return persona, prompt

    def voice_mode(self, entity: Entity) -> VoiceMode:
        """When replies in the entity's chat are spoken: its own setting, else the global one."""
        return entity.voice_replies or self.voice_replies.mode

    @cached_property
    def _by_jid(self) -> dict[str, Entity]:
        index: dict[str, int] = {}
        for i, entity in enumerate(self.monitored_entities):
            jid = self.entity_jid(entity)
            if jid in index:
                raise FieldError(
                    f"monitored_entities[{i}]", f"{jid} is already monitored_entities[{index[jid]}]"
                )
            index[jid] = i
        return {jid: self.monitored_entities[i] for jid, i in index.items()}

    @cached_property
    def _by_name(self) -> dict[str, Entity]:
        index: dict[str, int] = {}
        for i, entity in enumerate(self.monitored_entities):
            if entity.name is None:
                continue
            key = entity.name.strip().casefold()
            if key in index:
                raise FieldError(
                    f"monitored_entities[{i}].name",
                    f"{entity.name!r} is already the name of monitored_entities[{index[key]}]",
                )
            index[key] = i
        return {key: self.monitored_entities[i] for key, i in index.items()}
