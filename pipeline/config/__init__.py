"""The typed app.json plus secrets from the environment (docs/config.md, docs/cli.md).

``load_config`` (app.json with .env and the environment) and ``parse_config``
(app.json alone, for the offline tools) are the only readers; every mistake is
a ``ConfigError`` of one line naming the file and the field.
"""

from events.dsn import passwords as dsn_passwords
from events.dsn import redacted as redact_dsn
from pipeline.config._app import AppConfig, UnknownChat
from pipeline.config._entities import (
    Entity,
    GroupEntity,
    GroupOverrides,
    GroupsConfig,
    SelfEntity,
    Trigger,
    UserEntity,
)
from pipeline.config._errors import ConfigError
from pipeline.config._load import (
    Environment,
    LoadedConfig,
    Secrets,
    config_from_dict,
    load_config,
    parse_config,
    store_url,
    web_token,
)
from pipeline.config._sections import (
    ALERT_KINDS,
    AlertsConfig,
    AudioService,
    DefaultsConfig,
    LimitsConfig,
    LlmConfig,
    LoggingConfig,
    MediaConfig,
    PollingConfig,
    RotationConfig,
    SessionConfig,
    StoreConfig,
    TakeoverConfig,
    ToolsConfig,
    TranscriptionConfig,
    VitalityConfig,
    VoiceMode,
    VoiceRepliesConfig,
    WebConfig,
    WhatsAppConfig,
    dsn_problem,
    is_loopback,
    parse_listen,
)
from pipeline.config._skips import Skip, clock, counted, skip_words, trigger_words

__all__ = [
    "ALERT_KINDS",
    "AlertsConfig",
    "AppConfig",
    "AudioService",
    "ConfigError",
    "DefaultsConfig",
    "Entity",
    "Environment",
    "GroupEntity",
    "GroupOverrides",
    "GroupsConfig",
    "LimitsConfig",
    "LlmConfig",
    "LoadedConfig",
    "LoggingConfig",
    "MediaConfig",
    "PollingConfig",
    "RotationConfig",
    "Secrets",
    "SelfEntity",
    "SessionConfig",
    "Skip",
    "StoreConfig",
    "TakeoverConfig",
    "ToolsConfig",
    "TranscriptionConfig",
    "Trigger",
    "UnknownChat",
    "UserEntity",
    "VitalityConfig",
    "VoiceMode",
    "VoiceRepliesConfig",
    "WebConfig",
    "WhatsAppConfig",
    "clock",
    "config_from_dict",
    "counted",
    "dsn_passwords",
    "dsn_problem",
    "is_loopback",
    "load_config",
    "parse_config",
    "parse_listen",
    "redact_dsn",
    "skip_words",
    "store_url",
    "trigger_words",
    "web_token",
]
