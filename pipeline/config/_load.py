"""Reading app.json and the environment: the only place that does.

Every mistake becomes a ``ConfigError`` of one line naming the file and the
field (docs/config.md, "The file"; docs/cli.md, "Environment").
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
from dotenv.parser import parse_stream

from events.dsn import passwords
from events.dsn import redacted as redact_dsn
from pipeline.config._app import AppConfig
from pipeline.config._errors import ConfigError, from_decode_error, from_validation_error
from pipeline.config._sections import LlmConfig, WebConfig, dsn_problem, url_problem

WEB_TOKEN = "WABOT_WEB_TOKEN"
MIN_WEB_TOKEN = 16  # characters: the console shows every message, so no guessable token


class Secrets(msgspec.Struct, frozen=True, kw_only=True):
    """The API keys and the web console's token; never logged, in an event, or repr'd."""

    api_key: str | None = None
    web_token: str | None = None
    # TRANSCRIPTION_API_KEY, else LLM_API_KEY; None: no key sent (a local server).
    transcription_key: str | None = None
    # TTS_API_KEY, else LLM_API_KEY: for voice replies.
    speech_key: str | None = None

    def __repr__(self) -> str:
        shown = {k: "<set>" if v else None for k, v in msgspec.structs.asdict(self).items()}
        return f"Secrets({', '.join(f'{k}={v}' for k, v in shown.items())})"


class LoadedConfig(msgspec.Struct, frozen=True, kw_only=True):
    """A parsed app.json with the environment applied, ready for ConfigLoaded."""

    config: AppConfig
    hash: str  # sha256 hex of the app.json bytes
    path: str
    secrets: Secrets

    def public_dict(self) -> dict[str, Any]:
        """The config as JSON values (lists, not tuples), every default spelled out.

        A webhook URL often carries its token in the path or query: only its
        scheme and host are kept. Every other URL keeps all but its password
        (``user:***@``), so no secret reaches the log.
        """
        result = _as_json(self.config)
        alerts = result.get("alerts") or {}
        if alerts.get("webhook"):
            parts = urlsplit(alerts["webhook"])
            alerts["webhook"] = f"{parts.scheme}://{parts.hostname}/…"
        for section, key in _urls(result):
            section[key] = redact_dsn(section[key])
        return result

    def secret_values(self) -> list[str]:
        """Every secret this config holds, for log lines to mask: each key of
        ``secrets`` (all of them: a key added there is masked without a word
        here) and the passwords its URLs carry."""
        keys = [v for v in msgspec.structs.astuple(self.secrets) if isinstance(v, str) and v]
        return [*keys, *self.url_passwords()]

    def url_passwords(self) -> list[str]:
        """The passwords the config's URLs carry, for log lines to mask (httpx's
        DEBUG lines quote each request's URL; the request itself needs them)."""
        found = {
            p for section, key in _urls(_as_json(self.config)) for p in passwords(section[key])
        }
        return sorted(found)


# The settings holding a URL that may carry a password (scheme://user:PASSWORD@host,
# ?password=): an endpoint behind an authenticating proxy, the WhatsApp proxy, a database.
_URL_SETTINGS = (
    ("llm", "base_url"),
    ("media", "transcription", "base_url"),
    ("voice_replies", "base_url"),
    ("alerts", "webhook"),
    ("whatsapp", "proxy"),
    ("whatsapp", "session_db"),
    ("store", "url"),
)


def _as_json(config: AppConfig) -> dict[str, Any]:
    result: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(config))
    return result


def _urls(tree: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """(section, key) of each URL setting that is set in ``tree``, the config as JSON."""
    found = []
    for *path, key in _URL_SETTINGS:
        section = tree
        for name in path:
            section = section.get(name) or {}
        if isinstance(section.get(key), str):
            found.append((section, key))
    return found


def config_from_dict(data: Mapping[str, Any], *, source: str = "stored config") -> AppConfig:
    """An AppConfig from builtins, e.g. a stored ``ConfigLoaded.config``."""
    try:
        return msgspec.convert(data, AppConfig)
    except msgspec.ValidationError as exc:
        raise from_validation_error(source, data, exc, AppConfig) from None


def store_url(path: Path) -> str | None:
    """``store.url`` of an app.json, read without the rest of it (tools need nothing more).

    A broken app.json elsewhere does not stop a tool; a bad ``store.url`` does.
    """
    if not path.is_file():
        return None
    data = _read(path)
    try:
        raw = msgspec.json.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise from_decode_error(str(path), data, exc) from None
    store = raw.get("store") if isinstance(raw, dict) else None
    url = store.get("url") if isinstance(store, dict) else None
    if url is None:
        return None
    if not isinstance(url, str) or (problem := dsn_problem(url)):
        raise ConfigError(str(path), problem or "expected a string", "store.url")
    return url


def parse_config(path: Path) -> AppConfig:
    """app.json alone, without the environment (offline tools need no API key)."""
    return _parse(str(path), _read(path))


def _parse(source: str, data: bytes) -> AppConfig:
    try:
        raw = msgspec.json.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise from_decode_error(source, data, exc) from None
    return config_from_dict(raw, source=source)


def load_config(
    path: Path, *, env_file: Path | None = None, environ: Mapping[str, str] | None = None
) -> LoadedConfig:
    """Read app.json and the optional .env; ``environ`` (default os.environ) wins over .env."""
    source = str(path)
    data = _read(path)
    config = _parse(source, data)
    env = Environment(env_file, os.environ if environ is None else environ)
    if (url := _url(env, "LLM_BASE_URL")) is not None:
        llm = msgspec.structs.replace(config.llm, base_url=url)
        config = msgspec.structs.replace(config, llm=llm)
    if (url := _url(env, "TRANSCRIPTION_BASE_URL")) is not None:
        media = config.media
        heard = msgspec.structs.replace(media.transcription, base_url=url)
        config = msgspec.structs.replace(
            config, media=msgspec.structs.replace(media, transcription=heard)
        )
    if (url := _url(env, "TTS_BASE_URL")) is not None:
        spoken = msgspec.structs.replace(config.voice_replies, base_url=url)
        config = msgspec.structs.replace(config, voice_replies=spoken)
    token = env.get(WEB_TOKEN)
    if config.web.enabled:
        _check_web(config.web, token, source, env.source_of(WEB_TOKEN))
    api_key = _api_key(config.llm, env)
    llm_key = "LLM_API_KEY" if config.llm.provider == "openai" else "PERPLEXITY_API_KEY"
    _one_credential(source, env, "llm.base_url", config.llm.base_url, llm_key if api_key else None)
    stt_url, tts_url = config.media.transcription.base_url, config.voice_replies.base_url
    return LoadedConfig(
        config=config,
        hash=hashlib.sha256(data).hexdigest(),
        path=source,
        secrets=Secrets(
            api_key=api_key,
            web_token=token,
            transcription_key=_service_key(
                source, env, "media.transcription.base_url", stt_url, "TRANSCRIPTION_API_KEY"
            ),
            speech_key=_service_key(source, env, "voice_replies.base_url", tts_url, "TTS_API_KEY"),
        ),
    )


# Each endpoint setting's environment override (docs/cli.md, "Environment").
_URL_VARIABLES = {
    "llm.base_url": "LLM_BASE_URL",
    "media.transcription.base_url": "TRANSCRIPTION_BASE_URL",
    "voice_replies.base_url": "TTS_BASE_URL",
}


def _service_key(source: str, env: Environment, field: str, url: str, own: str) -> str | None:
    """An audio service's key: its own variable, else LLM_API_KEY, except that a URL with
    a user and password authenticates with those: the LLM's key is not sent to it then."""
    key = env.key(own)
    _one_credential(source, env, field, url, own if key else None)
    if key is None and not _userinfo(url):
        key = env.key("LLM_API_KEY")
    return key


def _one_credential(source: str, env: Environment, field: str, url: str, key: str | None) -> None:
    """Refuse a URL with ``user:password@`` when the key variable ``key`` is sent to it too.

    httpx sends a URL's user and password as HTTP Basic auth, in the one
    Authorization header the bearer key needs: the key would never be sent (every
    call refused, 401) and the password would go to whoever expected the key.
    The error shows the URL as ``user:***@``, never the password.
    """
    if key is None or not _userinfo(url):
        return
    variable = _URL_VARIABLES[field]
    problem = (
        f"{redact_dsn(url)!r} carries a user and password (sent as HTTP Basic auth) and "
        f"{key} is set (sent as a bearer token): a request has one Authorization header, "
        "so the key would never be sent; remove one of them"
    )
    if env.get(variable) is not None:
        raise ConfigError(env.source_of(variable), f"{variable}: {problem}")
    raise ConfigError(source, problem, field)


def _userinfo(url: str) -> bool:
    """Whether httpx sends ``url``'s own user or password (HTTP Basic auth) with a request."""
    parts = urlsplit(url)
    return bool(parts.username or parts.password)


def web_token(
    web: WebConfig, *, env_file: Path | None, environ: Mapping[str, str] | None = None
) -> str | None:
    """``WABOT_WEB_TOKEN`` (environment over .env) for serving ``web``; errors name the field."""
    env = Environment(env_file, os.environ if environ is None else environ)
    token = env.get(WEB_TOKEN)
    _check_web(web, token, "--listen", env.source_of(WEB_TOKEN))
    return token


def _check_web(web: WebConfig, token: str | None, source: str, token_source: str) -> None:
    if token is None and not web.loopback:
        raise ConfigError(
            source,
            f"{web.listen} is not a loopback address: set {WEB_TOKEN} "
            "(environment or .env) so the console asks for it",
            "web.listen" if source != "--listen" else "",
        )
    if token is not None and len(token) < MIN_WEB_TOKEN:
        raise ConfigError(
            token_source,
            f"{WEB_TOKEN} is too short ({len(token)} characters, at least {MIN_WEB_TOKEN}; "
            "e.g. openssl rand -hex 16)",
        )


class Environment:
    """Variables from the process environment over those of the .env file: the one
    reader of .env (values literal, no ``${VAR}``; an empty ``KEY=`` is unset)."""

    def __init__(self, env_file: Path | None, environ: Mapping[str, str]) -> None:
        self.env_file = env_file
        self.from_file: dict[str, str] = {}
        if env_file is not None:
            try:
                text = _read(env_file).decode()
            except UnicodeDecodeError:
                raise ConfigError(str(env_file), "cannot read (not UTF-8 text)") from None
            self.from_file = _dotenv(str(env_file), text)
        self.environ = environ

    def get(self, name: str) -> str | None:
        """The non-empty value of ``name``; an empty ``KEY=`` line counts as unset."""
        return self.environ.get(name) or self.from_file.get(name)

    def key(self, name: str) -> str | None:
        """``get(name)`` for an API key, refused when it cannot be one: a space or a
        control character in it (a stray quote, a line break pasted along) would
        otherwise start the bot and fail every call with 401 later."""
        value = self.get(name)
        if value is not None and any(c.isspace() or not c.isprintable() for c in value):
            raise ConfigError(
                self.source_of(name),
                f"{name}: contains a space or a control character (an API key is one word)",
            )
        return value

    def source_of(self, name: str) -> str:
        if self.environ.get(name) or self.env_file is None:
            return "environment"
        return str(self.env_file)


def _dotenv(source: str, text: str) -> dict[str, str]:
    """The ``NAME=value`` lines of a .env file; any other line is an error naming it.

    No ``${VAR}`` expansion: values are literal, and the real environment stays
    unread. The line itself is not shown: it may hold a key.
    """
    values: dict[str, str] = {}
    for binding in parse_stream(io.StringIO(text)):
        if binding.error or (binding.key is not None and binding.value is None):
            statement = binding.original.string
            blank = statement[: len(statement) - len(statement.lstrip())]
            line = binding.original.line + blank.count("\n")
            raise ConfigError(source, f"line {line}: expected NAME=value")
        if binding.key is not None and binding.value:
            values[binding.key] = binding.value
    return values


def _url(env: Environment, name: str) -> str | None:
    """An endpoint override from the environment, checked like the app.json setting."""
    url = env.get(name)
    if url is not None and (problem := url_problem(url)):
        raise ConfigError(env.source_of(name), f"{name}: {problem}")
    return url


def _api_key(llm: LlmConfig, env: Environment) -> str | None:
    if llm.provider == "openai":
        return env.key("LLM_API_KEY")  # local servers (Ollama, llama.cpp) need none
    key = env.key("PERPLEXITY_API_KEY")
    if key is None:
        required = 'required for llm.provider "perplexity"'
        if env.env_file is None:
            raise ConfigError(
                "environment",
                f"PERPLEXITY_API_KEY is not set ({required}; export it or use a .env file)",
            )
        raise ConfigError(
            str(env.env_file),
            f"PERPLEXITY_API_KEY is not set here or in the environment ({required})",
        )
    return key


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read ({exc.strerror or exc})") from None
