"""The command lines' parser, and CHAT and time arguments of the offline commands
(``audit``, ``replay.py``).

CHAT is resolved with a config: the ``--config`` file when given, else the
latest ``ConfigLoaded`` in the log, so the commands work on a copied store
with no app.json around.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import NoReturn

from events.model import Recorded
from pipeline.config import AppConfig, ConfigError, UnknownChat, config_from_dict
from projections import addresses, aliases, configs
from projections.fold import States, fold

EXIT_USAGE = 2  # a mistake of the user: the command line, app.json, .env, a missing log


class BadArgument(Exception):
    """A command-line value that cannot be used (exit 2, one line)."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a mistake on the command line is one line and exit 2, as every other
    mistake of the user (docs/cli.md, Conventions), not a usage dump. A subclass sets
    ``program``, the word the line starts with; subcommands' parsers are of its class."""

    program = ""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.program}: {message} (see --help)\n")


def latest_config(records: Iterable[Recorded]) -> AppConfig | None:
    """The config in force after ``records``, as the configs projection folds it."""
    return config_in_force(fold(records, [configs.PROJECTION]).configs)


def config_in_force(state: configs.State) -> AppConfig | None:
    """The config the configs projection's ``state`` says is in force; None when none
    is logged, or when this version refuses the one logged (a range checked since,
    such as ``catch_up_minutes: 0``): as for the console and ``stats``, the tools
    then go by the log alone, so a chat can still be forgotten or audited."""
    last = configs.current(state)
    if last is None:
        return None
    try:
        return config_from_dict(last.config, source=f"ConfigLoaded {last.hash[:12]} in the log")
    except ConfigError:
        return None


def resolve_chat(
    arg: str, config: AppConfig | None, known_chats: Iterable[str], states: States | None = None
) -> str:
    """The chat's JID; unknown when it is neither monitored nor seen in the log.

    With the log's ``states``, any id of a person (a ``…@lid`` the log learned
    as theirs) names the chat their events are filed under, as for ``forget``.
    """
    if config is None:
        raise BadArgument(f"cannot resolve chat {arg!r}: no --config and no config in the log")
    try:
        jid = config.resolve_chat(arg)
    except UnknownChat as exc:
        raise BadArgument(str(exc)) from None
    if states is not None:
        jid = person(states, jid)[0]
    if config.find_entity(jid) is None and jid not in set(known_chats):
        raise BadArgument(f"unknown chat {arg!r}: {jid} is not monitored and not in the log")
    return jid


def person(states: States, jid: str) -> tuple[str, set[str]]:
    """The chat ``jid`` names and every id it is known by (phone JID, LID).

    WhatsApp addresses one person by either; events are filed under the
    monitored chat, and ``via``/``chat_alt`` and senders taught the others.
    """
    chat = addresses.chat_of(states.addresses, jid) or jid
    ids = {jid, chat} | aliases.forms(states.aliases, chat) | aliases.forms(states.aliases, jid)
    ids.update(a for a, c in states.addresses.canonical.items() if c == chat)
    return chat, ids


def parse_time(text: str) -> float:
    """``--since``/``--until``: unix seconds, or an ISO date/time (UTC unless it has an offset).

    Python reads other scripts' digits and ``nan``/``inf`` as numbers too; a
    time typed by mistake in either would silently select nothing (or all).
    """
    bad = BadArgument(
        f"{text!r} is not a time (ISO date/time like 2025-11-25T14:00, or unix seconds)"
    )
    if not text.isascii():
        raise bad
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise bad
        return seconds
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise bad from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def iso(ts: float) -> str:
    """A log time for people and JSON: UTC, second precision."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
