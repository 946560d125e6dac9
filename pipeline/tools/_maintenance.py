"""``compact`` and ``forget``: the only ways events leave the log.

Both go through the log's ``compact``, which deletes in short transactions
and records one ``Compacted`` marker saying what went; a running daemon's
projections absorb it (they drop what they derived from those events).
Safe to run beside the daemon. A run that fails (a full disk: one line, exit
2) leaves its compaction to be finished by the next run, or the daemon's
next start: the rest goes and its marker is recorded.
Afterwards the attachments no remaining event refers to are deleted
(``sweep_media``): those of a forgotten chat at once, others once they are
older than ``GRACE_SECONDS`` (a running daemon may be recording one).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path

from events.backends import is_postgres
from events.jid import InvalidJid, normalize
from events.model import Compacted, Recorded
from events.protocol import LogReader, LogWriter, Selection
from pipeline.config import AppConfig, UnknownChat
from pipeline.media import MediaStore, referenced_media
from pipeline.tools._args import BadArgument, config_in_force, person
from pipeline.tools._where import Where, as_where, chosen_number, open_tool_writer
from pipeline.tools.replay import forget_replays
from pipeline.transport import forget_secrets
from projections import aliases, copies, facts, pauses, reminders, retention
from projections.fold import States
from projections.runner import Runner

DEFAULT_RETENTION_DAYS = 30.0


def compact(store: Path | Where, now: float) -> str:
    """Rotate the log by ``rotation.retention_days`` of the config in force, and with
    ``rotation.drop_expired_sessions`` remove the texts of ended sessions too."""
    with open_tool_writer(store) as log:
        runner = Runner.start(log)
        states = runner.states
        config = config_in_force(states.configs)
        days = config.rotation.retention_days if config else DEFAULT_RETENTION_DAYS
        kept = (
            aliases.teachers(states.aliases, config.people if config else None)
            | pauses.kept(states.pauses, now)
            | reminders.kept(states.reminders)
            | facts.kept(states.facts)
        )
        marker = log.compact("rotation", retention.rotation(states.retention, days, now, kept))
        runner.catch_up()  # the projections absorb the rotation
        dropping = config is not None and config.rotation.drop_expired_sessions
        expired = _drop_expired(log, runner.states, config, now) if config and dropping else ""
        if marker is not None or expired:
            # The log dropped the snapshot folded before (it held what went): the
            # next start begins from this one, not from the start of the log.
            runner.catch_up()
            runner.snapshot(log)
        swept = sweep_media(store, log)
    files = _files(swept)
    if marker is None:
        return f"nothing older than {days:g} days to remove{expired}{files}"
    return f"removed {_compacted(marker).removed} events older than {days:g} days{expired}{files}"


def _drop_expired(log: LogWriter, states: States, config: AppConfig, now: float) -> str:
    memory = config.session_memory
    selection = retention.expiry(
        states.sessions,
        now,
        memory.mode,
        memory.ttl_minutes,
        config.vitality.timezone,
        aliases.teachers(states.aliases),
    )
    marker = log.compact("expiry", selection) if selection is not None else None
    return f"; removed {_compacted(marker).removed} events of ended sessions" if marker else ""


def forget(store: Path | Where, chat: str) -> str:
    """Remove every event of one chat, under any id of it; the owner's right to have it gone.

    Also every event elsewhere that quotes it (``projections.copies``: debug
    notes and alerts in the owner's chat). Then nothing of it stays in the
    store: snapshots go, the log's files are rewritten without the freed space
    (``purge``), and a fresh snapshot keeps the other chats' totals (what
    rotation removed is counted only there); its attachments go, so do its
    turns in replay experiments and the message secrets kept for its edits.
    """
    where = as_where(store)
    with open_tool_writer(where) as log:
        runner = Runner.start(log)
        states = runner.states
        config = config_in_force(states.configs)
        jid, ids = person(states, _resolve(chat, config))
        chats = frozenset(ids & log.chats()) or frozenset({jid})
        theirs = referenced_media(log.read(chats=chats))
        quoting = _copies(log, config, jid, ids, chats)
        # The copies first: they are found from the chat's own events (``copies.sources``),
        # which a run failing between the two (a full disk) must leave for the next to read.
        # Each compaction is all-or-nothing: one the last run left unfinished is finished
        # by the first ``compact`` here, its marker recorded (``finish_compactions``).
        copied = log.compact("forget", Selection(seqs=quoting)) if quoting else None
        marker = log.compact("forget", Selection(chats=chats))
        runner.catch_up()  # the projections absorb the markers: the chat's numbers come off
        log.purge()
        # purge dropped every snapshot, and with them the totals kept of events rotated
        # out before (spend, replies): the next fold would start from the compacted log
        # and lose them. The fresh one holds nothing of the chat (the markers took it out).
        runner.snapshot(log)
        swept = sweep_media(where, log, doomed=theirs)
        earlier = _forgotten_before(log, chats) if marker is None else ""
    replays = forget_replays(where.store / "replays", ids)
    secrets = forget_secrets(where.store, ids)  # the neonize transport's, of recent messages
    files = _files(swept) + _files(replays.deleted, "replay file") + _taken_out(replays.rewritten)
    files += _files(secrets, "edit secret")
    if marker is None and copied is None:
        return f"nothing recorded for {jid}{earlier}{files}"
    return f"forgot {jid}{_what_went(marker, copied, earlier)}{files}"


def _what_went(marker: Recorded | None, copied: Recorded | None, earlier: str) -> str:
    """The chat's own events and the copies quoting it; a chat forgotten before (a run
    killed after its marker) whose copies were written since has only the copies left."""
    if marker is None and earlier and copied is not None:
        return f"{earlier}; now {_compacted(copied).removed} events elsewhere quoting it removed"
    removed = _compacted(marker).removed if marker else 0
    elsewhere = f", and {_compacted(copied).removed} elsewhere quoting it" if copied else ""
    return f": {removed} events removed{elsewhere}"


def _forgotten_before(log: LogReader, chats: frozenset[str]) -> str:
    """How the last forget of ``chats`` went, when one did: a run that died after
    recording its marker (in the purge) leaves nothing for the next to remove."""
    last = None
    for rec in log.read(chats=[""]):  # markers have no chat
        ev = rec.event
        if (
            isinstance(ev, Compacted)
            and ev.reason == "forget"
            and not chats.isdisjoint(ev.chats or ())
        ):
            last = rec
    if last is None:
        return ""
    when = datetime.fromtimestamp(last.ts, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f": already forgotten at {when} ({_compacted(last).removed} events removed)"


def _copies(
    log: LogReader, config: AppConfig | None, jid: str, ids: set[str], chats: frozenset[str]
) -> frozenset[int]:
    """The events outside ``chats`` that carry their words: in the owner's chat, chat-less."""
    found = copies.sources(log.read(chats=chats))
    entity = config.find_entity(jid) if config is not None else None
    names = {entity.name} if entity is not None and entity.name else set()
    owner = {config.owner_jid} if config is not None else set()
    elsewhere = log.read(chats=sorted((owner | {""}) - chats))
    return copies.copies(elsewhere, ids, names, found)


def sweep_media(store: Path | Where, log: LogReader, *, doomed: Collection[str] = ()) -> int:
    """Delete the media files no event in ``log`` refers to; returns how many went.

    ``doomed``: files of events just removed on purpose, deleted even if young.
    The files are in the store directory, wherever the log is (SQLite or PostgreSQL).
    """
    where = as_where(store)
    number = chosen_number(where) if is_postgres(where.url) else None
    media = MediaStore.of(where.store, number)
    return media.sweep(log.media(), doomed=doomed)


def _files(gone: int, what: str = "media file") -> str:
    return f"; deleted {gone} {what}{'s' if gone != 1 else ''}" if gone else ""


def _taken_out(rewritten: int) -> str:
    if not rewritten:
        return ""
    return f"; took the chat's turns out of {rewritten} replay file{'s' if rewritten != 1 else ''}"


def _resolve(chat: str, config: AppConfig | None) -> str:
    """An entity name needs the config; a JID or phone number does not."""
    try:
        return config.resolve_chat(chat) if config is not None else normalize(chat)
    except (UnknownChat, InvalidJid) as exc:
        raise BadArgument(str(exc)) from None


def _compacted(marker: Recorded) -> Compacted:
    assert isinstance(marker.event, Compacted)
    return marker.event
