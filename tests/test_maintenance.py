"""compact and forget: events leave the log only through a recorded compaction."""

import errno
import os
import re
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from events.backends import open_log
from events.model import (
    ChatTurn,
    Compacted,
    ConfigLoaded,
    LlmRequested,
    MessageReceived,
    OwnerAlerted,
    Recorded,
    ReplyPlanned,
    ReplySent,
    TransportStatus,
)
from events.protocol import Selection
from events.testing import FakeClock
from events.units import DAY
from pipeline.cli import main
from pipeline.tools import _maintenance as maintenance
from pipeline.tools._args import config_in_force
from projections.fold import SNAPSHOT_VERSION, fold
from projections.retention import rotation
from projections.runner import SNAPSHOT_NAME, Runner

ALICE = "491701111111@s.whatsapp.net"
BOB = "491702222222@s.whatsapp.net"
NOW = time.time()  # the CLI reads the real clock
CONFIG = {
    "whatsapp": {"phone_number": "491700000000"},
    "monitored_entities": [
        {"type": "user", "phone": "491701111111", "name": "Alice"},
        {"type": "user", "phone": "491702222222", "name": "Bob"},
    ],
    "rotation": {"retention_days": 10},
}


def message(chat: str, n: int) -> MessageReceived:
    return MessageReceived(chat=chat, msg_id=f"M{n}", sender=chat, text=f"text {n}")


def request(config_hash: str) -> LlmRequested:
    return LlmRequested(
        chat=ALICE,
        call_id="C1",
        session_id="S1",
        trigger_ids=["M9"],
        model="m",
        params={},
        messages=[ChatTurn("user", "hi")],
        config_hash=config_hash,
    )


def cli(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args, "--store", str(store)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def store(tmp_path: Path) -> Path:
    clock = FakeClock(NOW - 20 * DAY)
    log = open_log(tmp_path, clock=clock)
    log.append(ConfigLoaded(hash="old", config=CONFIG, path="app.json"))
    log.append(ConfigLoaded(hash="used", config=CONFIG, path="app.json"))
    log.append(message(ALICE, 1), message(BOB, 2), TransportStatus(state="connected"))
    clock.advance(15 * DAY)  # 5 days ago: inside the 10-day retention
    log.append(message(ALICE, 9), request("used"), message(BOB, 10))
    log.close()
    return tmp_path


def test_rotation_keeps_recent_events_and_the_configs_still_in_use(store: Path) -> None:
    log = open_log(store)
    selection = rotation(fold(log.read()).retention, 10, NOW)
    assert isinstance(selection, Selection)
    gone = [type(r.event).__name__ for r in log.read() if selection.matches(r)]
    # The newest TransportStatus stays: it is the connection's state.
    assert gone == ["ConfigLoaded", "MessageReceived", "MessageReceived"]
    kept = [r.event for r in log.read() if not selection.matches(r)]
    assert [e.hash for e in kept if isinstance(e, ConfigLoaded)] == ["used"]


def test_compact_command_rotates_by_the_configured_retention(store: Path) -> None:
    before = open_log(store).last_seq()
    done = cli(store, "compact")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "removed 3 events older than 10 days"
    rows = list(open_log(store).read())
    marker = rows[-1]
    assert isinstance(marker.event, Compacted)
    assert (marker.event.reason, marker.event.removed) == ("rotation", 3)
    assert marker.seq > before
    assert cli(store, "compact").stdout.strip() == "nothing older than 10 days to remove"


def _holding(store: Path, text: bytes) -> list[str]:
    """The store's files holding ``text``, and its snapshots that do."""
    files = [p.name for p in sorted(store.rglob("*")) if p.is_file() and text in p.read_bytes()]
    with closing(sqlite3.connect(f"{(store / 'events.db').as_uri()}?mode=ro", uri=True)) as db:
        rows = db.execute("SELECT name, state FROM snapshots").fetchall()
    return files + [f"snapshot {name}" for name, state in rows if text in state]


def test_compact_leaves_no_byte_of_what_it_removed_beside_a_running_bot(tmp_path: Path) -> None:
    """The bot's snapshot, folded before, kept the expired texts, and so did the WAL
    the bot's open log keeps after the tool exits."""
    clock = FakeClock(NOW - 20 * DAY)
    bot = open_log(tmp_path, clock=clock)  # open throughout, as the running bot's
    bot.append(ConfigLoaded(hash="c", config=CONFIG, path="app.json"))
    texts = (
        MessageReceived(chat=ALICE, msg_id=f"M{i}", sender=ALICE, text=f"zebra-quartz {i}")
        for i in range(20)
    )
    bot.append(*texts)
    Runner.start(bot).snapshot(bot)  # as the bot's last stop saved it
    clock.advance(15 * DAY)
    bot.append(MessageReceived(chat=BOB, msg_id="B1", sender=BOB, text="walrus"))
    assert "snapshot projections" in _holding(tmp_path, b"zebra-quartz")
    done = cli(tmp_path, "compact")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("removed 20 events")
    assert _holding(tmp_path, b"zebra-quartz") == []
    # The tool saved the state it absorbed: the next start does not fold the whole log.
    marker = list(bot.read())[-1]
    assert isinstance(marker.event, Compacted)
    found = bot.load_snapshot(SNAPSHOT_NAME, SNAPSHOT_VERSION)
    assert found is not None
    assert found[0] >= marker.seq
    bot.close()
    assert _holding(tmp_path, b"zebra-quartz") == []


def test_forget_removes_every_event_of_one_chat_only(store: Path) -> None:
    done = cli(store, "forget", "--chat", "Bob")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"forgot {BOB}: 2 events removed"
    rows = list(open_log(store).read())
    assert not [r for r in rows if r.chat == BOB and not isinstance(r.event, Compacted)]
    assert len([r for r in rows if r.chat == ALICE]) == 3


def test_forget_run_again_says_the_chat_was_already_forgotten(store: Path) -> None:
    """A run that died after its marker (in the purge, the snapshot) left nothing for the
    next: "nothing recorded" alone would read as if the chat had never been removed."""
    assert cli(store, "forget", "--chat", "Bob").returncode == 0
    again = cli(store, "forget", "--chat", "Bob")
    assert again.returncode == 0, again.stderr
    when = r"\d{4}-\d\d-\d\d \d\d:\d\d UTC"
    assert re.fullmatch(
        rf"nothing recorded for {BOB}: already forgotten at {when} \(2 events removed\)\n",
        again.stdout,
    )
    never = cli(store, "forget", "--chat", "491709999999")
    assert never.stdout == "nothing recorded for 491709999999@s.whatsapp.net\n"


def test_forget_run_again_after_new_copies_says_the_chat_went_before_and_the_copies_now(
    store: Path,
) -> None:
    """A run killed after its marker, then the bot quoted the chat in the owner's chat
    (a debug note, an alert): the next run removes only those copies, and says so
    rather than "0 events removed" as if the chat had held nothing."""
    assert cli(store, "forget", "--chat", "Bob").returncode == 0
    log = open_log(store)
    owner = "491700000000@s.whatsapp.net"
    note = ReplyPlanned(
        chat=owner, reply_id="D1", purpose="debug", text="[debug] Bob", quotes_chat=BOB
    )
    alert = OwnerAlerted(kind="llm_failing", ok=True, detail="boom", quotes_chat=BOB)
    log.append(note, alert)
    log.close()
    again = cli(store, "forget", "--chat", "Bob")
    assert again.returncode == 0, again.stderr
    when = r"\d{4}-\d\d-\d\d \d\d:\d\d UTC"
    assert re.fullmatch(
        rf"forgot {BOB}: already forgotten at {when} \(2 events removed\); "
        r"now 2 events elsewhere quoting it removed\n",
        again.stdout,
    )
    assert not [r for r in open_log(store).read() if isinstance(r.event, OwnerAlerted)]


def _reply(chat: str, n: int) -> ReplySent:
    return ReplySent(chat=chat, reply_id=f"R{n}", wa_id=f"W{n}", sent_at=NOW)


def _replies(store: Path) -> int:
    with closing(open_log(store)) as log:
        return Runner.start(log).states.stats.replies_sent


def test_forget_takes_off_only_the_forgotten_chats_numbers_after_a_rotation(
    tmp_path: Path,
) -> None:
    """A rotation keeps the totals of what it removed in the snapshot it saves;
    ``forget`` drops every snapshot (they held the chat): it must save a fresh one,
    or the other chats' rotated replies are no longer counted."""
    clock = FakeClock(NOW - 20 * DAY)
    with closing(open_log(tmp_path, clock=clock)) as log:
        log.append(ConfigLoaded(hash="c", config=CONFIG, path="app.json"))
        log.append(*(_reply(ALICE, n) for n in range(7)))
        clock.advance(15 * DAY)  # inside the 10-day retention
        log.append(message(BOB, 7), _reply(BOB, 8), _reply(ALICE, 9))
    assert cli(tmp_path, "compact").stdout.startswith("removed 7 events")  # not the config
    assert _replies(tmp_path) == 9  # the rotated ones stay counted

    done = cli(tmp_path, "forget", "--chat", "Bob")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"forgot {BOB}: 2 events removed")
    assert _replies(tmp_path) == 9 - 1  # Bob's one reply, not Alice's rotated ones
    with closing(open_log(tmp_path)) as log:
        found = log.load_snapshot(SNAPSHOT_NAME, SNAPSHOT_VERSION)
        assert found is not None
        assert found[0] == log.last_seq()
    assert _holding(tmp_path, b"text 7") == []


def test_forget_on_a_full_disk_is_one_line_and_the_next_run_finishes_it(store: Path) -> None:
    """The marker's write fails as on a full disk, after Bob's events went: one line,
    exit 2. Run again, ``forget`` records the marker for all that went, and no
    snapshot keeps Bob's words; Alice keeps every event."""
    with closing(open_log(store)) as log:
        Runner.start(log).snapshot(log)  # the bot's, folded with Bob's messages
    assert "snapshot projections" in _holding(store, b"text 10")
    with closing(sqlite3.connect(store / "events.db", isolation_level=None)) as db:
        db.execute(
            "CREATE TRIGGER disk_full BEFORE INSERT ON events WHEN NEW.type = 'Compacted'"
            " BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
        failed = cli(store, "forget", "--chat", "Bob")
        db.execute("DROP TRIGGER disk_full")
    assert failed.returncode == 2
    assert failed.stderr == "wabot: event log write failed: database or disk is full\n"
    assert _holding(store, b"text 10") == []  # the snapshots went with the first chunk

    done = cli(store, "forget", "--chat", "Bob")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"forgot {BOB}: 2 events removed"
    rows = list(open_log(store).read())
    (marker,) = (r.event for r in rows if isinstance(r.event, Compacted))
    assert (marker.reason, marker.chats, marker.by_chat) == ("forget", [BOB], {BOB: 2})
    assert not [r for r in rows if r.chat == BOB]
    assert len([r for r in rows if r.chat == ALICE]) == 3
    assert _holding(store, b"text 10") == []
    with closing(open_log(store)) as log:
        found = log.load_snapshot(SNAPSHOT_NAME, SNAPSHOT_VERSION)
        assert found is not None
        assert found[0] == log.last_seq()


def test_a_store_file_forget_cannot_write_is_one_line_and_exit_2(
    store: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A full disk as the chat's replay files are rewritten: no traceback."""
    page = store / "replays" / "run.json"

    def full(*_: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(page))

    monkeypatch.setattr(maintenance, "forget_replays", full)
    assert main(["forget", "--chat", "Bob", "--store", str(store)]) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"wabot: {page}: {os.strerror(errno.ENOSPC)}\n")


def test_forget_an_unknown_name_is_one_line_and_exit_2(store: Path) -> None:
    done = cli(store, "forget", "--chat", "Carol")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "unknown chat 'Carol'" in done.stderr


def test_missing_store_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = cli(tmp_path / "nowhere", "compact")
    assert done.returncode == 2
    assert "no event log here" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_logged_config_this_version_refuses_leaves_the_tools_to_the_log() -> None:
    """A log recorded under a config a later check refuses (catch_up_minutes 0 passed
    before it was refused): the tools go by the log alone rather than stop."""
    refused = {"whatsapp": {"phone_number": "491700000000"}, "polling": {"catch_up_minutes": 0}}
    good = {"whatsapp": {"phone_number": "491700000000"}}
    old = fold([Recorded(1, NOW, ConfigLoaded(hash="a", config=refused, path="app.json"))])
    assert config_in_force(old.configs) is None
    new = fold([Recorded(1, NOW, ConfigLoaded(hash="b", config=good, path="app.json"))])
    assert config_in_force(new.configs) is not None


def test_compact_run_again_after_a_failure_says_what_the_finished_rotation_removed(
    store: Path,
) -> None:
    """A ``compact`` cut short (the marker's write failed, as on a full disk, or kill -9)
    left its rotation half done; run again, it finishes it and says what went, not
    "nothing older than ... to remove" (its own selection, made later, is another)."""
    with closing(sqlite3.connect(store / "events.db", isolation_level=None)) as db:
        db.execute(
            "CREATE TRIGGER disk_full BEFORE INSERT ON events WHEN NEW.type = 'Compacted'"
            " BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
        failed = cli(store, "compact")
        db.execute("DROP TRIGGER disk_full")
    assert failed.returncode == 2

    done = cli(store, "compact")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "removed 3 events older than 10 days"
    markers = [r.event for r in open_log(store).read() if isinstance(r.event, Compacted)]
    assert [(m.reason, m.removed) for m in markers] == [("rotation", 3)]
    assert cli(store, "compact").stdout.strip() == "nothing older than 10 days to remove"
