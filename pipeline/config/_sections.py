"""The app.json sections other than the entity list (docs/config.md has every key).

Every section has safe defaults, so a minimal app.json needs only
``whatsapp.phone_number``. Every number has a range, upper bound included: a
slip like ``2e9`` or ``2**64`` is an error naming the field, not a value that
overflows later (the snapshot codec's integers are 64-bit). Checks that
msgspec types cannot express live in ``__post_init__`` and raise
``FieldError``, which the loader turns into one line naming the field.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal, get_args
from urllib.parse import SplitResult, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from croniter import croniter

from events.dsn import redacted as redact_dsn
from events.jid import InvalidJid, phone_digits
from events.model import AlertKind

_HOUR = 3600.0
_YEAR_MINUTES = 525_600.0
Seconds = Annotated[float, msgspec.Meta(gt=0, le=_HOUR)]
Minutes = Annotated[float, msgspec.Meta(gt=0, le=_YEAR_MINUTES)]
_HH_MM = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")  # ASCII digits: \d takes any script
_PROXY_SCHEMES = ("http", "https", "socks5")
_ISO_639_1 = re.compile(r"[a-z]{2}")


class FieldError(ValueError):
    """A value that parses but makes no sense; ``field`` is relative to its struct."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every config struct: immutable, and a typo in a key is an error."""


class WhatsAppConfig(Section, frozen=True, kw_only=True):
    phone_number: str
    bot_tag: bool = False
    session_db: str = "store/whatsapp.db"
    # "typing…" in the chat while the LLM answers.
    typing: bool = True
    # Off by default: marking a chat read hides it from the owner's own unread list.
    read_receipts: bool = False
    # Whether a reply visibly quotes the message it answers.
    quote_replies: Literal["groups", "always", "never"] = "groups"
    # Longer replies are split into numbered parts (WhatsApp folds long messages).
    max_message_chars: Annotated[int, msgspec.Meta(ge=200, le=65_536)] = 4000
    # An http(s):// or socks5:// proxy for the connection to WhatsApp.
    proxy: str | None = None
    # No more WhatsApp sends than this in any 60 s (the owner's chat included): bursts
    # from a linked device are what gets personal numbers restricted.
    max_sends_per_minute: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 20
    # The model's Markdown written as WhatsApp's (*bold*, _italic_, links as "t (u)"), or as is.
    formatting: Literal["whatsapp", "plain"] = "whatsapp"

    def __post_init__(self) -> None:
        try:
            phone_digits(self.phone_number)
        except InvalidJid as exc:
            raise FieldError("phone_number", str(exc)) from None
        if self.proxy is not None:
            try:
                parts = urlsplit(self.proxy)
                usable = parts.scheme in _PROXY_SCHEMES and bool(parts.hostname)
            except ValueError:  # e.g. an unclosed IPv6 host
                usable = False
            if not usable:
                shown = redact_dsn(self.proxy)
                raise FieldError(
                    "proxy", f"{shown!r} is not an http(s):// or socks5:// URL with a host"
                )
            if (problem := _port_problem(self.proxy, parts)) is not None:
                raise FieldError("proxy", problem)


class ToolsConfig(Section, frozen=True, kw_only=True):
    """The function tools the model may call (docs/llm.md, "Tools").

    ``silence``: where the model may decide not to answer (``stay_silent``).
    ``max_rounds``: rounds of tool calls in one turn; the next request then goes
    out without tools, so the turn ends in an answer. ``reminders`` and
    ``memory`` switch the tools of issue 20's next slices (not built yet).
    """

    reminders: bool = True
    memory: bool = True
    silence: Literal["never", "groups", "always"] = "groups"
    max_rounds: Annotated[int, msgspec.Meta(ge=1, le=16)] = 4


class DefaultsConfig(Section, frozen=True, kw_only=True):
    persona: str = "You are a concise, friendly assistant."
    prompt: str = "Answer in the language of the question."


class PollingConfig(Section, frozen=True, kw_only=True):
    interval_seconds: Seconds = 5.0
    debounce_seconds: Annotated[float, msgspec.Meta(ge=0, le=_HOUR)] = 2.0
    max_concurrent_chats: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 8
    # Messages older than this when first seen are recorded and skipped as stale; not 0,
    # which would make every message (all arrive a little late) stale.
    catch_up_minutes: Minutes = 30.0


class SessionConfig(Section, frozen=True, kw_only=True):
    """``max_messages`` 0 keeps no history: every message is answered on its own."""

    mode: Literal["idle", "fixed", "daily", "never"] = "idle"
    ttl_minutes: Minutes = 60.0
    max_messages: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 10


class RotationConfig(Section, frozen=True, kw_only=True):
    """``drop_expired_sessions``: each rotation also removes ended sessions' texts."""

    retention_days: Annotated[float, msgspec.Meta(gt=0, le=36_500)] = 30.0
    interval_hours: Annotated[float, msgspec.Meta(gt=0, le=8760)] = 24.0
    drop_expired_sessions: bool = False


class VitalityConfig(Section, frozen=True, kw_only=True):
    """A daily check-in to the owner's chat; ``cron``, when set, replaces ``time``."""

    enabled: bool = True
    time: str = "09:00"
    cron: str | None = None
    # Also the zone in which "daily" sessions end at midnight.
    timezone: str = "Europe/Berlin"
    message: str = "Bot alive"

    def __post_init__(self) -> None:
        if not _HH_MM.fullmatch(self.time):
            raise FieldError("time", f"{self.time!r} is not a time of day (HH:MM, 24-hour)")
        if self.cron is not None and not croniter.is_valid(self.cron):
            raise FieldError("cron", f"{self.cron!r} is not a cron expression")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise FieldError("timezone", f"unknown time zone {self.timezone!r}") from None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def cron_expression(self) -> str:
        """The schedule as cron, whichever of ``time`` and ``cron`` defined it."""
        if self.cron is not None:
            return self.cron
        hour, minute = self.time.split(":")
        return f"{int(minute)} {int(hour)} * * *"


# When app.json leaves temperature out. OpenAI's reasoning models (GPT-5,
# o-series) refuse anything but 1, and local servers ship per-model defaults,
# so openai sends none; Perplexity's answers read best a little cool.
_DEFAULT_TEMPERATURE = {"perplexity": 0.2, "openai": None}


class LlmConfig(Section, frozen=True, kw_only=True):
    """``null`` for ``temperature`` or ``max_output_tokens`` leaves it out of the
    request, so the server's default applies. An omitted ``temperature`` is the
    provider's default: never UNSET after construction."""

    provider: Literal["perplexity", "openai"] = "perplexity"
    model: str = "perplexity/sonar"
    web_search: bool = True
    base_url: str = "https://api.perplexity.ai"
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] | msgspec.UnsetType | None = (
        msgspec.UNSET
    )
    max_output_tokens: Annotated[int, msgspec.Meta(ge=16, le=1_000_000)] | None = 1024
    timeout_seconds: Seconds = 60.0
    max_retries: Annotated[int, msgspec.Meta(ge=0, le=100)] = 3

    def __post_init__(self) -> None:
        if self.temperature is msgspec.UNSET:
            temperature = _DEFAULT_TEMPERATURE[self.provider]
            msgspec.structs.force_setattr(self, "temperature", temperature)
        if not self.model.strip():
            raise FieldError("model", "must not be empty")
        if problem := url_problem(self.base_url):
            raise FieldError("base_url", problem)


class LimitsConfig(Section, frozen=True, kw_only=True):
    replies_per_chat_per_hour: Annotated[int, msgspec.Meta(ge=1, le=3600)] = 30
    daily_budget_usd: Annotated[float, msgspec.Meta(gt=0, le=100_000)] = 5.0
    max_input_chars: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 4000


class TakeoverConfig(Section, frozen=True, kw_only=True):
    enabled: bool = True
    minutes: Minutes = 30.0


class LoggingConfig(Section, frozen=True, kw_only=True):
    """``auto`` is console on a terminal, JSON otherwise."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["auto", "json", "console"] = "auto"


ALERT_KINDS: tuple[AlertKind, ...] = get_args(AlertKind)


class AlertsConfig(Section, frozen=True, kw_only=True):
    """Where the owner hears of trouble besides WhatsApp: a JSON POST to ``webhook``."""

    webhook: str | None = None
    on: tuple[AlertKind, ...] = ALERT_KINDS
    # "The LLM is failing" after this many turns in a row ended without an answer.
    llm_failures: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 3
    # "WhatsApp is unreachable" after the connection has been down this long.
    connection_down_minutes: Annotated[float, msgspec.Meta(gt=0, le=525_600)] = 10.0
    # "A reply was not delivered" when no phone confirmed it within this long.
    undelivered_minutes: Annotated[float, msgspec.Meta(gt=0, le=525_600)] = 30.0

    def __post_init__(self) -> None:
        if self.webhook is not None and (problem := url_problem(self.webhook)):
            raise FieldError("webhook", problem)


class StoreConfig(Section, frozen=True, kw_only=True):
    """Where the event log is: ``url`` (a ``postgresql://`` DSN) or else ``STORE/events.db``.

    ``synchronous`` is the SQLite log's commit durability.
    """

    synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    url: str | None = None

    def __post_init__(self) -> None:
        if self.url is not None and (problem := dsn_problem(self.url)):
            raise FieldError("url", problem)


_DSN_SCHEMES = ("postgresql", "postgres")


def dsn_problem(url: str) -> str | None:
    """Why ``url`` cannot name a PostgreSQL log, or None if it can (never echoes a password)."""
    scheme, sep, _ = url.partition("://")
    if not sep or scheme.lower() not in _DSN_SCHEMES:
        return f"{redact_dsn(url)!r} is not a postgresql:// URL"
    try:
        urlsplit(url)
    except ValueError as exc:  # e.g. an unclosed [IPv6] host
        return f"{redact_dsn(url)!r} is not a valid URL ({exc})"
    return None


class WebConfig(Section, frozen=True, kw_only=True):
    """The web console inside ``run`` (docs/config.md, ``web``); read only.

    Any ``listen`` address but a loopback one needs ``WABOT_WEB_TOKEN``, checked
    where the environment is read. Changing this section needs a restart.
    """

    enabled: bool = False
    listen: str = "127.0.0.1:8765"

    def __post_init__(self) -> None:
        try:
            parse_listen(self.listen)
        except ValueError as exc:
            raise FieldError("listen", str(exc)) from None

    @property
    def host(self) -> str:
        return parse_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return parse_listen(self.listen)[1]

    @property
    def loopback(self) -> bool:
        """Only this machine can connect: no token is needed."""
        return is_loopback(self.host)


def parse_listen(text: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) as ``(host, port)``; port 0 picks a free one."""
    host, colon, port = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not colon or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{text!r} is not host:port (e.g. 127.0.0.1:8765)")
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{text!r}: {host!r} is not an IPv6 address") from None
    return host, int(port)


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback IP; any other name may reach the network."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be an http(s) endpoint (LLM base URL, webhook), or None if it can
    (never echoes a password)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # "Invalid IPv6 URL": an unclosed [ in the host
        return f"{redact_dsn(url)!r} is not an http(s) URL (its host is not valid)"
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return f"{redact_dsn(url)!r} is not an http(s) URL"
    if not parts.hostname:
        return f"{redact_dsn(url)!r} is not an http(s) URL (it has no host)"
    if not url.isprintable():
        return f"{redact_dsn(url)!r} holds a control character"
    return _port_problem(url, parts)


def _port_problem(url: str, parts: SplitResult) -> str | None:
    """Why ``url``'s port (if it names one) is not one: a typo (8O80, 99999) would fail
    every connection, long after the start."""
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        return f"{redact_dsn(url)!r}: its port is not a number from 1 to 65535"
    return None


class AudioService(Section, frozen=True, kw_only=True):
    """An OpenAI-compatible audio endpoint (OpenAI, Groq, vLLM, speaches, whisper.cpp's
    and other local servers): where it is, which model, how long to wait, what it costs."""

    provider: Literal["openai"] = "openai"
    base_url: str = "https://api.openai.com/v1"
    model: str = ""
    timeout_seconds: Seconds = 120.0
    max_retries: Annotated[int, msgspec.Meta(ge=0, le=100)] = 3
    # What a minute of audio costs when the service does not say; 0 for a server of
    # your own. Counts against limits.daily_budget_usd.
    price_per_minute_usd: Annotated[float, msgspec.Meta(ge=0, le=100)] = 0.0

    def __post_init__(self) -> None:
        if not self.model.strip():
            raise FieldError("model", "must not be empty")
        if problem := url_problem(self.base_url):
            raise FieldError("base_url", problem)


class TranscriptionConfig(AudioService, frozen=True, kw_only=True):
    """``POST {base_url}/audio/transcriptions``. ``language`` (ISO 639-1, e.g. "de")
    skips detection."""

    model: str = "whisper-1"
    language: str | None = None
    # OpenAI's whisper-1: $0.006 a minute.
    price_per_minute_usd: Annotated[float, msgspec.Meta(ge=0, le=100)] = 0.006

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.language is not None and not _ISO_639_1.fullmatch(self.language):
            raise FieldError(
                "language",
                f'{self.language!r} is not an ISO 639-1 code (two lowercase letters, e.g. "de")',
            )


VoiceMode = Literal["never", "mirror", "always"]


class VoiceRepliesConfig(AudioService, frozen=True, kw_only=True):
    """Replies spoken as voice notes over ``POST {base_url}/audio/speech``: ``never``,
    ``mirror`` (a voice note is answered with one), ``always``; an entity may say otherwise."""

    mode: VoiceMode = "never"
    model: str = "gpt-4o-mini-tts"
    voice: str = "alloy"
    # Longer replies: this much is spoken, the rest follows as text.
    max_chars: Annotated[int, msgspec.Meta(ge=1, le=65_536)] = 1500
    timeout_seconds: Seconds = 60.0
    max_retries: Annotated[int, msgspec.Meta(ge=0, le=100)] = 2
    # OpenAI's gpt-4o-mini-tts: about $0.015 a minute of speech.
    price_per_minute_usd: Annotated[float, msgspec.Meta(ge=0, le=100)] = 0.015

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.voice.strip():
            raise FieldError("voice", "must not be empty")


class MediaConfig(Section, frozen=True, kw_only=True):
    """Voice notes, images and documents: downloaded up to ``max_mb``, read for the model."""

    enabled: bool = True
    max_mb: Annotated[float, msgspec.Meta(gt=0, le=100)] = 16.0
    # Images go to the model (it must accept images); off: it is told one was sent.
    vision: bool = True
    transcription: TranscriptionConfig = TranscriptionConfig()

    @property
    def max_bytes(self) -> int:
        return int(self.max_mb * 1024 * 1024)
