"""app.json and .env loading: typed values, one-line errors, secrets kept out of sight."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
import msgspec.inspect as mi
import pytest

from pipeline.config import (
    AppConfig,
    ConfigError,
    GroupEntity,
    Secrets,
    SelfEntity,
    UnknownChat,
    UserEntity,
    config_from_dict,
    load_config,
)

ROOT = Path(__file__).resolve().parent.parent
KEY = {"PERPLEXITY_API_KEY": "pplx-test-secret"}
BASE: dict[str, Any] = {
    "whatsapp": {"phone_number": "491700000000"},
    "monitored_entities": [
        {"type": "user", "phone": "+49 170-111 1111", "name": "Alice", "persona": "P"},
        {"type": "group", "jid": "120363000000000000@g.us", "name": "Family"},
        {"type": "self", "name": "Me", "prompt": "Q"},
    ],
}


def write(tmp_path: Path, doc: Any, name: str = "app.json") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc, indent=2))
    return path


def patched(**sections: Any) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    doc.update(sections)
    return doc


def error_of(path: Path, **kw: Any) -> str:
    kw.setdefault("environ", KEY)
    with pytest.raises(ConfigError) as info:
        load_config(path, **kw)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        pytest.param(
            patched(monitored_entities=[{"type": "user", "phone": "12ab"}]),
            "monitored_entities[0].phone: '12ab' is not a phone number"
            " (digits 0-9 with country code)",
            id="bad-phone",
        ),
        pytest.param(
            patched(polling={"intervall_seconds": 5}),
            "polling.intervall_seconds: unknown key",
            id="unknown-key",
        ),
        pytest.param(
            patched(vitality={"timezone": "Europe/Berln"}),
            "vitality.timezone: unknown time zone 'Europe/Berln'",
            id="bad-timezone",
        ),
        pytest.param(
            patched(llm={"temperature": "warm"}),
            "llm.temperature: expected float | null, got str",
            id="wrong-type",
        ),
        pytest.param(
            {"whatsapp": {}},
            "whatsapp.phone_number: required key is missing",
            id="missing-key",
        ),
        pytest.param(
            patched(polling={"max_concurrent_chats": 0}),
            "polling.max_concurrent_chats: expected integer >= 1, got 0",
            id="out-of-range",
        ),
        pytest.param(
            patched(polling={"interval_seconds": 0}),
            "polling.interval_seconds: expected number > 0, got 0",
            id="zero-duration",
        ),
        pytest.param(
            patched(polling={"catch_up_minutes": 0}),
            "polling.catch_up_minutes: expected number > 0, got 0",
            id="catch-up-zero-would-skip-every-message",
        ),
        pytest.param(
            patched(session_memory={"mode": "weekly"}),
            "session_memory.mode: invalid value 'weekly'"
            " (expected one of: daily, fixed, idle, never)",
            id="bad-enum",
        ),
        pytest.param(
            patched(monitored_entities=[{"type": "group", "jid": "491701111111@s.whatsapp.net"}]),
            "monitored_entities[0].jid: '491701111111@s.whatsapp.net' is not a group JID (…@g.us)",
            id="group-not-g-us",
        ),
        pytest.param(
            patched(monitored_entities=[{"type": "user", "jid": "x@example.com"}]),
            "monitored_entities[0].jid: 'x@example.com' is not a WhatsApp JID (user@server)",
            id="bad-jid",
        ),
        pytest.param(
            patched(monitored_entities=[{"type": "user", "jid": "1234@broadcast"}]),
            "monitored_entities[0].jid: '1234@broadcast' is not a person's JID"
            " (…@s.whatsapp.net or …@lid)",
            id="user-jid-not-a-person",
        ),
        pytest.param(
            patched(whatsapp={"phone_number": "491700000000", "proxy": "socks5://"}),
            "whatsapp.proxy: 'socks5://' is not an http(s):// or socks5:// URL with a host",
            id="proxy-without-host",
        ),
        pytest.param(
            patched(whatsapp={"phone_number": "491700000000", "proxy": "http://[::1"}),
            "whatsapp.proxy: 'http://[::1' is not an http(s):// or socks5:// URL with a host",
            id="proxy-unclosed-ipv6-host",
        ),
        pytest.param(
            patched(media={"transcription": {"language": "english"}}),
            "media.transcription.language: 'english' is not an ISO 639-1 code"
            ' (two lowercase letters, e.g. "de")',
            id="language-not-iso-639-1",
        ),
        pytest.param(
            patched(monitored_entities=[{"type": "user", "name": "Bob"}]),
            'monitored_entities[0]: a "user" entity needs exactly one of "phone" and "jid"',
            id="user-without-address",
        ),
        pytest.param(
            patched(monitored_entities=[{"type": "bot"}]),
            "monitored_entities[0].type: invalid value 'bot' (expected one of: user, group, self)",
            id="bad-entity-type",
        ),
        pytest.param(
            patched(
                monitored_entities=[{"type": "group", "jid": "1@g.us", "trigger": {"mode": "x"}}]
            ),
            "monitored_entities[0].trigger.mode: invalid value 'x'"
            " (expected one of: always, keyword, mention)",
            id="bad-trigger-mode",
        ),
        pytest.param(
            patched(monitored_entities=[{"type": "self", "trigger": {}}]),
            "monitored_entities[0].trigger: unknown key",
            id="key-of-another-entity-type",
        ),
        pytest.param(
            patched(
                monitored_entities=[
                    {"type": "user", "phone": "491700000000"},
                    {"type": "self"},
                ]
            ),
            "monitored_entities[1]: 491700000000@s.whatsapp.net is already monitored_entities[0]",
            id="duplicate-entity",
        ),
        pytest.param(
            patched(
                monitored_entities=[
                    {"type": "self", "name": "Me"},
                    {"type": "user", "phone": "491701111111", "name": "me"},
                ]
            ),
            "monitored_entities[1].name: 'me' is already the name of monitored_entities[0]",
            id="duplicate-name",
        ),
        pytest.param(
            patched(
                monitored_entities=[
                    {"type": "group", "jid": "1@g.us", "trigger": {"mode": "keyword"}}
                ]
            ),
            'monitored_entities[0].trigger.keywords: trigger mode "keyword" needs at least one'
            " keyword",
            id="keyword-mode-without-keywords",
        ),
        pytest.param(
            patched(vitality={"cron": "every morning"}),
            "vitality.cron: 'every morning' is not a cron expression",
            id="bad-cron",
        ),
        pytest.param(
            patched(vitality={"time": "25:00"}),
            "vitality.time: '25:00' is not a time of day (HH:MM, 24-hour)",
            id="bad-time",
        ),
        pytest.param(
            patched(vitality={"time": "\u0660\u0669:\u0660\u0660"}),  # 09:00, Arabic-Indic
            "vitality.time: '\u0660\u0669:\u0660\u0660' is not a time of day (HH:MM, 24-hour)",
            id="time-in-arabic-indic-digits",
        ),
        pytest.param(
            patched(llm={"max_output_tokens": 8}),
            "llm.max_output_tokens: expected integer >= 16, got 8",
            id="too-few-tokens",
        ),
        pytest.param(
            patched(rotation={"drop_expired_sessions": "yes"}),
            "rotation.drop_expired_sessions: expected bool, got str",
            id="drop-expired-sessions-not-a-bool",
        ),
        pytest.param([], "expected object, got array", id="not-an-object"),
    ],
)
def test_invalid_app_json_is_one_line_naming_file_and_field(tmp_path, doc, expected):
    path = write(tmp_path, doc)
    assert error_of(path) == f"{path}: {expected}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{\n  "whatsapp": {\n    "phone_number" "1"}}', "line 3, column 20: invalid JSON"),
        ('{\n  "whatsapp": {', "line 2, column 16: invalid JSON (unexpected end of file)"),
    ],
)
def test_invalid_json_names_line_and_column(tmp_path, text, expected):
    path = write(tmp_path, text)
    assert error_of(path).startswith(f"{path}: {expected}")


def test_unreadable_file(tmp_path):
    path = tmp_path / "app.json"
    assert error_of(path) == f"{path}: cannot read (No such file or directory)"


def test_missing_env_file_given_explicitly_is_an_error(tmp_path):
    env = tmp_path / ".env"
    message = error_of(write(tmp_path, BASE), env_file=env)
    assert message == f"{env}: cannot read (No such file or directory)"


def test_missing_perplexity_key_names_variable_and_env_file(tmp_path):
    env = write(tmp_path, "PERPLEXITY_API_KEY=\n", ".env")
    message = error_of(write(tmp_path, BASE), env_file=env, environ={})
    assert message.startswith(f"{env}: PERPLEXITY_API_KEY is not set")
    assert 'llm.provider "perplexity"' in message
    assert "environment" in message


def test_missing_perplexity_key_without_env_file_names_environment(tmp_path):
    message = error_of(write(tmp_path, BASE), environ={})
    assert message.startswith("environment: PERPLEXITY_API_KEY is not set")


def test_bad_llm_base_url_names_its_source(tmp_path):
    env = write(tmp_path, "LLM_BASE_URL=localhost:8080\n", ".env")
    message = error_of(write(tmp_path, BASE), env_file=env)
    assert message == f"{env}: LLM_BASE_URL: 'localhost:8080' is not an http(s) URL"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        pytest.param("KEY=1\nLLM_BASE_URL: http://127.0.0.1:8080/v1\n", 2, id="colon"),
        pytest.param("# local\n\n\nWABOT_STORE mystore\nX=1\n", 4, id="space-after-blanks"),
        pytest.param("PERPLEXITY_API_KEY\n", 1, id="bare-name"),
    ],
)
def test_a_malformed_env_line_is_an_error_naming_its_number_not_its_text(tmp_path, text, line):
    """Dropping it would send the key and the chats to api.perplexity.ai, not the local
    server the owner meant (docs/cli.md, Conventions)."""
    env = write(tmp_path, text, ".env")
    message = error_of(write(tmp_path, BASE), env_file=env)
    assert message == f"{env}: line {line}: expected NAME=value"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PERPLEXITY_API_KEY", "pplx-0123456789abcdef\x1b"),
        ("PERPLEXITY_API_KEY", "pplx-0123 456789abcdef"),
        ("TTS_API_KEY", "sk-0123456789abcdef\u200b"),
    ],
)
def test_a_key_with_a_space_or_control_character_is_refused_without_showing_it(
    tmp_path, name, value
):
    """It would start the bot and fail every call with 401, long after the edit."""
    env = write(tmp_path, f"PERPLEXITY_API_KEY=pplx-good-key-0123\n{name}={value}\n", ".env")
    message = error_of(write(tmp_path, BASE), env_file=env, environ={})
    assert (
        message
        == f"{env}: {name}: contains a space or a control character (an API key is one word)"
    )
    assert value not in message


def test_shipped_app_json_and_env_example_load():
    loaded = load_config(ROOT / "app.json", env_file=ROOT / ".env.example", environ=KEY)
    config = loaded.config
    assert loaded.secrets.api_key == KEY["PERPLEXITY_API_KEY"]
    assert config.llm.provider == "perplexity"
    assert config.llm.model == "perplexity/sonar"
    assert config.llm.base_url == "https://api.perplexity.ai"  # empty LLM_BASE_URL= is unset
    kinds = [type(e) for e in config.monitored_entities]
    assert kinds == [UserEntity, GroupEntity, SelfEntity]


def test_the_shipped_app_json_is_quiet():
    """No debug copies of every turn to the owner until they ask for them."""
    config = load_config(ROOT / "app.json", environ=KEY).config
    assert [e.name for e in config.monitored_entities if e.debug] == []


def test_real_environment_beats_env_file(tmp_path):
    env = write(tmp_path, "PERPLEXITY_API_KEY=from-file\nLLM_BASE_URL=http://file:1\n", ".env")
    app = write(tmp_path, BASE)
    from_file = load_config(app, env_file=env, environ={})
    assert from_file.secrets.api_key == "from-file"
    assert from_file.config.llm.base_url == "http://file:1"
    both = load_config(
        app,
        env_file=env,
        environ={"PERPLEXITY_API_KEY": "from-env", "LLM_BASE_URL": "http://127.0.0.1:9"},
    )
    assert both.secrets.api_key == "from-env"
    assert both.config.llm.base_url == "http://127.0.0.1:9"


def test_openai_provider_key_is_optional_and_from_llm_api_key(tmp_path):
    app = write(tmp_path, patched(llm={"provider": "openai", "base_url": "http://127.0.0.1:1/v1"}))
    assert load_config(app, environ=KEY).secrets.api_key is None
    assert load_config(app, environ={"LLM_API_KEY": "sk-x"}).secrets.api_key == "sk-x"


@pytest.mark.parametrize(
    ("llm", "temperature", "max_output_tokens"),
    [
        ({}, 0.2, 1024),
        # OpenAI's reasoning models refuse any temperature but 1: openai sends none by default.
        ({"provider": "openai"}, None, 1024),
        ({"provider": "openai", "temperature": 0.7}, 0.7, 1024),
        ({"temperature": None, "max_output_tokens": None}, None, None),
    ],
)
def test_temperature_defaults_by_provider_and_null_means_not_sent(
    tmp_path, llm, temperature, max_output_tokens
):
    loaded = load_config(write(tmp_path, patched(llm=llm)), environ=KEY)
    assert loaded.config.llm.temperature == temperature
    assert loaded.config.llm.max_output_tokens == max_output_tokens
    stored = json.loads(json.dumps(loaded.public_dict()))  # as ConfigLoaded keeps it
    assert config_from_dict(stored).llm == loaded.config.llm


def test_defaults_fill_a_minimal_file(tmp_path):
    config = load_config(write(tmp_path, {"whatsapp": {"phone_number": "1 555 0100"}}), environ=KEY)
    assert config.config.owner_jid == "15550100@s.whatsapp.net"
    assert config.config.monitored_entities == ()
    assert config.config.polling.interval_seconds == 5
    assert config.config.vitality.cron_expression == "0 9 * * *"
    assert config.config.logging.format == "auto"
    assert config.config.store.synchronous == "NORMAL"


def test_fractional_durations_are_accepted(tmp_path):
    doc = patched(
        polling={"interval_seconds": 0.05, "debounce_seconds": 0, "catch_up_minutes": 0.5},
        session_memory={"mode": "fixed", "ttl_minutes": 0.05},
        takeover={"minutes": 0.1},
    )
    config = load_config(write(tmp_path, doc), environ=KEY).config
    assert config.polling.interval_seconds == 0.05
    assert config.polling.debounce_seconds == 0
    assert config.session_memory.ttl_minutes == 0.05
    assert config.takeover.minutes == 0.1


def test_cron_replaces_time(tmp_path):
    doc = patched(vitality={"cron": "30 7 * * 1-5", "timezone": "America/New_York"})
    vitality = load_config(write(tmp_path, doc), environ=KEY).config.vitality
    assert vitality.cron_expression == "30 7 * * 1-5"
    assert vitality.zone.key == "America/New_York"


def test_secrets_stay_out_of_public_dict_and_repr(tmp_path):
    loaded = load_config(write(tmp_path, BASE), environ=KEY)
    secret = KEY["PERPLEXITY_API_KEY"]
    assert secret not in json.dumps(loaded.public_dict())
    assert secret not in repr(loaded)
    assert secret not in str(loaded.secrets)


PASSWORD = "Pw-proxy-9f8e7d6c"


def test_passwords_in_urls_stay_out_of_public_dict_but_reach_the_requests(tmp_path):
    """An endpoint behind an authenticating proxy, a WhatsApp proxy: each URL is recorded
    with ``user:***@`` (as store.url is), while the config in use keeps the password."""
    doc = patched(
        llm={"provider": "openai"},  # a local server behind the proxy: no API key
        whatsapp={"phone_number": "491700000000", "proxy": f"socks5://u:{PASSWORD}@h:1080"},
        voice_replies={"base_url": f"https://u:{PASSWORD}@tts.lan/v1"},
        store={"url": f"postgresql://u:{PASSWORD}@db/wabot"},
    )
    environ = {
        "LLM_BASE_URL": f"http://proxyuser:{PASSWORD}@llm.lan/v1",
        "TRANSCRIPTION_BASE_URL": f"http://stt.lan/v1?password={PASSWORD}",
    }
    loaded = load_config(write(tmp_path, doc), environ=environ)
    public = loaded.public_dict()
    assert PASSWORD not in json.dumps(public)
    assert public["llm"]["base_url"] == "http://proxyuser:***@llm.lan/v1"
    assert public["media"]["transcription"]["base_url"] == "http://stt.lan/v1?password=***"
    assert public["voice_replies"]["base_url"] == "https://u:***@tts.lan/v1"
    assert public["whatsapp"]["proxy"] == "socks5://u:***@h:1080"
    assert public["store"]["url"] == "postgresql://u:***@db/wabot"
    assert config_from_dict(json.loads(json.dumps(public)))  # still a config a tool can read
    assert loaded.config.llm.base_url == environ["LLM_BASE_URL"]
    assert loaded.config.whatsapp.proxy == f"socks5://u:{PASSWORD}@h:1080"
    assert loaded.url_passwords() == [PASSWORD]  # for the log lines to mask (httpx's)


@pytest.mark.parametrize(
    ("doc", "environ", "shown"),
    [
        (
            patched(whatsapp={"phone_number": "491700000000", "proxy": f"ftp://u:{PASSWORD}@h"}),
            {},
            "whatsapp.proxy: 'ftp://u:***@h' is not an http(s):// or socks5:// URL with a host",
        ),
        (
            patched(llm={"base_url": f"ftp://u:{PASSWORD}@h/v1"}),
            {},
            "llm.base_url: 'ftp://u:***@h/v1' is not an http(s) URL",
        ),
        (BASE, {"LLM_BASE_URL": f"ftp://u:{PASSWORD}@h/v1"}, "'ftp://u:***@h/v1' is not an"),
        (  # an unclosed IPv6 host: urlsplit raises, once a traceback
            BASE,
            {"LLM_BASE_URL": f"http://u:{PASSWORD}@[bad/v1"},
            "'http://u:***@[bad/v1' is not an http(s) URL (its host is not valid)",
        ),
        (  # a port httpx refuses at every request: every alert pass failed
            patched(alerts={"webhook": "http://127.0.0.1:8O80/topic"}),
            {},
            "alerts.webhook: 'http://127.0.0.1:8O80/topic': its port is not a number from 1",
        ),
        (  # a port the socket refuses (in an ExceptionGroup)
            patched(alerts={"webhook": f"https://u:{PASSWORD}@h:99999/topic"}),
            {},
            "alerts.webhook: 'https://u:***@h:99999/topic': its port is not a number from 1",
        ),
        (
            BASE,
            {"LLM_BASE_URL": f"http://u:{PASSWORD}@h:0/v1"},
            "LLM_BASE_URL: 'http://u:***@h:0/v1': its port is not a number from 1 to 65535",
        ),
        (  # the proxy's port, checked as every other URL's
            patched(whatsapp={"phone_number": "491700000000", "proxy": "socks5://h:8O80"}),
            {},
            "whatsapp.proxy: 'socks5://h:8O80': its port is not a number from 1 to 65535",
        ),
        (  # httpx: "Request URL is missing an 'http://' or 'https://' protocol"
            patched(alerts={"webhook": "http://:8080/topic"}),
            {},
            "alerts.webhook: 'http://:8080/topic' is not an http(s) URL (it has no host)",
        ),
        (  # httpx.InvalidURL at every request
            patched(alerts={"webhook": "http://h/topic\x00"}),
            {},
            "alerts.webhook: 'http://h/topic\\x00' holds a control character",
        ),
    ],
)
def test_a_bad_url_is_an_error_line_without_its_password(tmp_path, doc, environ, shown):
    message = error_of(write(tmp_path, doc), environ={**KEY, **environ})
    assert shown in message
    assert PASSWORD not in message


def test_hash_is_sha256_of_the_file_bytes(tmp_path):
    path = write(tmp_path, BASE)
    loaded = load_config(path, environ=KEY)
    assert loaded.hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.path == str(path)


def test_public_dict_round_trips_through_config_from_dict(tmp_path):
    doc = patched(vitality={"cron": "0 8 * * *"})
    loaded = load_config(write(tmp_path, doc), environ={**KEY, "LLM_BASE_URL": "http://h:1"})
    stored = json.loads(json.dumps(loaded.public_dict()))  # as ConfigLoaded keeps it
    assert stored["llm"]["base_url"] == "http://h:1"
    assert config_from_dict(stored) == loaded.config


def test_config_from_dict_reports_errors_in_one_line():
    with pytest.raises(ConfigError, match=r"^stored config: whatsapp: required key is missing$"):
        config_from_dict({})


@pytest.fixture
def config(tmp_path) -> AppConfig:
    return load_config(write(tmp_path, BASE), environ=KEY).config


@pytest.mark.parametrize(
    ("arg", "jid"),
    [
        ("alice", "491701111111@s.whatsapp.net"),
        (" FAMILY ", "120363000000000000@g.us"),
        ("me", "491700000000@s.whatsapp.net"),
        ("+49 170 2222222", "491702222222@s.whatsapp.net"),
        ("491703333333:12@s.whatsapp.net", "491703333333@s.whatsapp.net"),
        ("123@lid", "123@lid"),
    ],
)
def test_resolve_chat_by_name_phone_or_jid(config, arg, jid):
    assert config.resolve_chat(arg) == jid


def test_resolve_chat_unknown_lists_names(config):
    with pytest.raises(UnknownChat, match=r"unknown chat 'Bob'.*'Alice', 'Family', 'Me'"):
        config.resolve_chat("Bob")


def test_entities_are_found_by_any_jid_spelling(config):
    alice, family, me = config.monitored_entities
    assert config.find_entity("491701111111:7@s.whatsapp.net") is alice
    assert config.find_entity("491701111111@c.us") is alice
    assert config.find_entity("120363000000000000@g.us") is family
    assert config.find_entity(config.owner_jid) is me
    assert config.find_entity("491709999999@s.whatsapp.net") is None
    assert config.find_entity("not a jid") is None


def test_entity_prompt_falls_back_to_defaults(config):
    alice, family, me = config.monitored_entities
    persona, prompt = config.defaults.persona, config.defaults.prompt
    assert config.entity_prompt(alice) == ("P", prompt)
    assert config.entity_prompt(family) == (persona, prompt)
    assert config.entity_prompt(me) == (persona, "Q")


def test_group_trigger_defaults_to_mention(config):
    family = config.monitored_entities[1]
    assert isinstance(family, GroupEntity)
    assert family.trigger.mode == "mention"


# -- numbers: every one has a range (issue 9) -----------------------------------


def numeric_settings(node: mi.Type, path: str = "") -> list[Numeric]:
    """Every number in app.json's schema, found by walking it (so new ones are covered)."""
    if isinstance(node, mi.UnionType):
        return [n for t in node.types for n in numeric_settings(t, path)]
    if isinstance(node, mi.IntType | mi.FloatType):
        return [Numeric(path, node)]
    if isinstance(node, mi.StructType):
        return [
            n
            for f in node.fields
            for n in numeric_settings(f.type, f"{path}.{f.encode_name}".lstrip("."))
        ]
    if isinstance(node, mi.ListType | mi.VarTupleType):
        item = node.item_type
        if isinstance(item, mi.UnionType):  # the entities: each kind's numbers go in BASE's one
            return [n for t in item.types for n in numeric_settings(t, f"{path}[{_of(path, t)}]")]
        return numeric_settings(item, f"{path}[0]")
    return []


def _of(path: str, kind: mi.Type) -> int:
    """The index in BASE's list at ``path`` of the entity of ``kind`` (a tagged struct)."""
    tag = kind.tag if isinstance(kind, mi.StructType) else None
    return next(n for n, e in enumerate(BASE[path]) if e.get("type") == tag)


class Numeric(NamedTuple):
    path: str
    type: mi.IntType | mi.FloatType

    @property
    def top(self) -> float:
        top = self.type.le if self.type.le is not None else self.type.lt
        assert top is not None, f"{self.path} has no upper bound"
        return top

    def doc(self, value: Any) -> dict[str, Any]:
        doc = copy.deepcopy(BASE)
        put(doc, self.path, value)
        return doc


def put(doc: dict[str, Any], path: str, value: Any) -> None:
    """Set ``doc[a][b]…`` for the dotted ``path`` (``media.transcription.model``,
    ``monitored_entities[1].groups.context_messages``)."""
    *sections, key = path.split(".")
    for section in sections:
        item = re.fullmatch(r"(\w+)\[(\d+)\]", section)
        doc = doc[item[1]][int(item[2])] if item else doc.setdefault(section, {})
    doc[key] = value


NUMBERS = numeric_settings(mi.type_info(AppConfig))


def test_the_walk_finds_the_numbers_issue_9_named():
    found = {n.path for n in NUMBERS}
    assert {
        "limits.max_input_chars",
        "llm.max_retries",
        "polling.max_concurrent_chats",
        "session_memory.max_messages",
        "llm.max_output_tokens",
        "limits.replies_per_chat_per_hour",
        "llm.temperature",
    } <= found


@pytest.mark.parametrize("number", NUMBERS, ids=[n.path for n in NUMBERS])
def test_every_number_has_a_range(number: Numeric):
    assert number.type.ge is not None or number.type.gt is not None, number.path
    assert number.top < 2**63  # the snapshot codec's integers are 64-bit


@pytest.mark.parametrize("number", NUMBERS, ids=[n.path for n in NUMBERS])
@pytest.mark.parametrize("value", [2**64, 10**30, 1e308])
def test_a_number_too_large_names_the_field_and_the_limit(tmp_path, number: Numeric, value):
    path = write(tmp_path, number.doc(value))
    word = "integer" if isinstance(number.type, mi.IntType) else "number"
    error = error_of(path)
    if word == "integer" and isinstance(value, float):  # the wrong type, whatever its size
        assert error.startswith(f"{path}: {number.path}: expected int")
        assert error.endswith(", got number")
        return
    limit = f"{number.top:g}" if word == "number" else str(number.top)
    expected = f"expected {word} <= {limit}, got {msgspec.json.encode(value).decode()}"
    assert error == f"{path}: {number.path}: {expected}"


def test_every_number_at_its_limit_is_accepted_and_survives_the_snapshot_codec(tmp_path):
    doc = copy.deepcopy(BASE)
    for number in NUMBERS:
        value = number.top if number.type.le is not None else number.top / 2
        put(doc, number.path, int(value) if isinstance(number.type, mi.IntType) else value)
    loaded = load_config(write(tmp_path, doc), environ=KEY)
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(loaded.config), type=AppConfig) == (
        loaded.config
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"llm": {"temperature": 1e400}', "llm.temperature: number out of range, got 1e400"),
        ('"llm": {"temperature": -1e400}', "llm.temperature: number out of range, got -1e400"),
        (
            '"limits": {"max_input_chars": ' + "9" * 5000 + "}",
            f"limits.max_input_chars: number out of range, got {'9' * 20}…",
        ),
        (
            '"monitored_entities": [{"type": "self", "x": [1, 2e999]}]',
            "monitored_entities[0].x[1]: number out of range, got 2e999",
        ),
    ],
)
def test_a_number_json_cannot_hold_names_its_field(tmp_path, text, expected):
    path = write(tmp_path, '{"whatsapp": {"phone_number": "491700000000"},\n' + text + "}")
    assert error_of(path) == f"{path}: {expected}"


@pytest.mark.parametrize("where", ["top", "value", "entity"])
def test_json_nested_too_deeply_is_one_line(tmp_path, where):
    deep = "[" * 10_000 + "]" * 10_000
    text = {
        "top": deep,
        "value": '{"whatsapp": {"phone_number": "1"}, "x": ' + deep + "}",
        "entity": '{"monitored_entities": [{"type": "self", "name": ' + deep + "}]}",
    }[where]
    path = write(tmp_path, text)
    assert error_of(path) == f"{path}: invalid JSON (nested too deeply)"


def test_a_number_out_of_range_under_a_repeated_key_is_still_one_line(tmp_path):
    path = write(tmp_path, '{"llm": {"temperature": 1e400, "temperature": 1}}')
    assert error_of(path) == f"{path}: invalid JSON (a number is out of range)"


def test_a_phone_number_in_other_digits_names_the_field(tmp_path):
    phone = "+" + "".join(chr(0x660 + int(d)) for d in "491701111111")  # Arabic-Indic
    path = write(tmp_path, patched(monitored_entities=[{"type": "user", "phone": phone}]))
    assert error_of(path) == (
        f"{path}: monitored_entities[0].phone: {phone!r} is not a phone number"
        " (digits 0-9 with country code)"
    )


def test_the_readme_states_every_range_as_the_schema_has_it():
    readme = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\s*\| (`[a-z_.]+`(?:, `[a-z_.]+`)*) \| (over|\d+)([^|]*)\|$", readme, re.M)
    stated: dict[str, str] = {}
    for keys, first, rest in rows:
        for key in re.findall(r"`([a-z_.]+)`", keys):
            stated[key] = (first + rest).split(" (")[0].strip()

    def plain(x: float | None) -> str:
        assert x is not None
        return str(int(x)) if float(x).is_integer() else str(x)

    for number in NUMBERS:
        low = (
            f"over {plain(number.type.gt)}" if number.type.gt is not None else plain(number.type.ge)
        )
        joiner = ", up to " if number.type.gt is not None else " to "
        # A group's own keys have the global ones' ranges, which README states.
        key = re.sub(r"^monitored_entities\[\d+\]\.", "", number.path)
        assert stated.get(key) == f"{low}{joiner}{plain(number.top)}", number.path


OPENAI = patched(llm={"provider": "openai"})
PROXIED = f"http://proxyuser:{PASSWORD}@llm.lan/v1"
SHOWN = "'http://proxyuser:***@llm.lan/v1' carries a user and password (sent as HTTP Basic"


@pytest.mark.parametrize(
    ("doc", "environ", "start"),
    [
        pytest.param(
            BASE, {**KEY, "LLM_BASE_URL": PROXIED}, "environment: LLM_BASE_URL: ", id="env"
        ),
        pytest.param(
            patched(llm={"base_url": PROXIED}), KEY, "app.json: llm.base_url: ", id="app.json"
        ),
        pytest.param(
            OPENAI,
            {"LLM_API_KEY": "sk-0123456789", "LLM_BASE_URL": PROXIED},
            "environment: LLM_BASE_URL: ",
            id="openai-key",
        ),
        pytest.param(
            patched(media={"transcription": {"base_url": PROXIED, "model": "whisper-1"}}),
            {**KEY, "TRANSCRIPTION_API_KEY": "stt-0123456789"},
            "app.json: media.transcription.base_url: ",
            id="transcription",
        ),
        pytest.param(
            BASE,
            {**KEY, "TTS_BASE_URL": PROXIED, "TTS_API_KEY": "tts-0123456789"},
            "environment: TTS_BASE_URL: ",
            id="speech",
        ),
    ],
)
def test_a_url_password_and_an_api_key_for_one_endpoint_are_refused(tmp_path, doc, environ, start):
    """httpx would send the URL's user and password as Basic auth in place of the bearer
    key: the key never reaches the service. One line, the password shown as ``***``."""
    message = error_of(write(tmp_path, doc), environ=environ)
    assert message.startswith(start.replace("app.json", str(tmp_path / "app.json")) + SHOWN)
    assert "the key would never be sent; remove one of them" in message
    assert PASSWORD not in message


def test_a_url_password_takes_the_place_of_the_llm_key_for_an_audio_service(tmp_path):
    """TRANSCRIPTION_API_KEY and TTS_API_KEY fall back to LLM_API_KEY, but not for a URL
    with its own user and password: the LLM's key is not sent there (no error either, as
    the LLM needs its key and the service has none of its own)."""
    environ = {
        "LLM_API_KEY": "sk-0123456789",
        "TRANSCRIPTION_BASE_URL": PROXIED,
        "TTS_BASE_URL": "http://tts.lan/v1",
    }
    loaded = load_config(write(tmp_path, OPENAI), environ=environ)
    assert loaded.secrets.transcription_key is None
    assert loaded.secrets.speech_key == "sk-0123456789"
    assert loaded.secrets.api_key == "sk-0123456789"


def test_every_key_and_url_password_is_a_secret_for_the_logs(tmp_path):
    """The log lines mask every key of ``Secrets`` (TTS_API_KEY included, which was
    left out once) and every URL password, whatever keys ``Secrets`` gains."""
    keys = {f.name: f"{f.name}-value-0123456789" for f in msgspec.structs.fields(Secrets)}
    environ = {"LLM_BASE_URL": f"http://proxyuser:{PASSWORD}@llm.lan/v1"}  # no key: a proxy's
    doc = patched(llm={"provider": "openai"})
    loaded = msgspec.structs.replace(
        load_config(write(tmp_path, doc), environ=environ), secrets=Secrets(**keys)
    )
    assert sorted(loaded.secret_values()) == sorted([*keys.values(), PASSWORD])
