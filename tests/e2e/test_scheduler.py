"""Rotation inside the running daemon: old events go on schedule, answering goes on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from events.model import (
    Compacted,
    ConfigLoaded,
    Recorded,
    ReplyPlanned,
    ReplySent,
    TransportStatus,
)
from tests.e2e.conftest import MakeDaemon

# Keep less than a second of events; rotate about every 1.1 s.
INTERVAL_HOURS = 0.0003
OWNER_LID = "987654321098765@lid"
ROTATION = {"retention_days": 0.00001, "interval_hours": INTERVAL_HOURS}


def is_rotation(rec: Recorded) -> bool:
    return isinstance(rec.event, Compacted) and rec.event.reason == "rotation"


def test_the_daemon_rotates_its_log_on_schedule_and_keeps_answering(make_daemon: MakeDaemon):
    daemon = make_daemon({"rotation": ROTATION})

    first = daemon.wait_for(is_rotation)
    # The startup message stays however old: the next start reads when it went.
    assert len(daemon.find(ReplyPlanned, purpose="startup")) == 1
    assert len(daemon.find(ConfigLoaded)) == 1  # the config in force stays

    msg_id = daemon.message("Paris or Rome?")
    assert daemon.next_sent()["reply_to"] == msg_id

    second = daemon.wait_for(lambda r: is_rotation(r) and r.seq > first.seq)
    assert second.ts - first.ts >= INTERVAL_HOURS * 3600 - 0.05


def test_the_first_check_in_reports_the_live_connection(make_daemon: MakeDaemon):
    # Missed five minutes ago: due the moment the daemon starts.
    missed = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%H:%M")
    daemon = make_daemon({"vitality": {"enabled": True, "time": missed, "timezone": "UTC"}})

    check_in = daemon.next_sent()
    daemon.stop()

    assert check_in["purpose"] == "vitality"
    assert check_in["text"].endswith("connection: connected"), check_in["text"]


def test_a_retention_of_seconds_never_makes_the_check_in_go_out_again(make_daemon: MakeDaemon):
    missed = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%H:%M")
    daemon = make_daemon(
        {
            "vitality": {"enabled": True, "time": missed, "timezone": "UTC"},
            # 0.0001 days: 8.6 s of events are kept; rotation about every 1.1 s.
            "rotation": {"retention_days": 0.0001, "interval_hours": INTERVAL_HOURS},
        }
    )
    daemon.send(type="status", state="connected", me_lid=OWNER_LID)
    check_in = daemon.next_sent()
    assert check_in["purpose"] == "vitality"
    planned = daemon.wait_record(ReplyPlanned, purpose="vitality")
    daemon.wait_record(ReplySent, wa_id=check_in["id"])
    # Something a later rotation must remove (else, on a slow machine, the passes after
    # the check-in may find nothing to remove and write no marker to wait for).
    daemon.message("Anything new?")
    assert daemon.next_sent()["purpose"] == "reply"
    # A rotation whose cut-off passed the check-in: without it kept, it would be gone.
    daemon.wait_for(lambda r: is_rotation(r) and _cut_after(r, planned.ts), timeout=20)
    daemon.stop()

    daemon.restart()
    assert daemon.startup is None  # the last startup message is remembered too
    connected = daemon.wait_record(TransportStatus, state="connected")
    first = daemon.wait_for(lambda r: is_rotation(r) and r.seq > connected.seq)
    # The pass that made this rotation began after the transport reported: the
    # check-in was due then if it ever was.
    daemon.wait_for(lambda r: is_rotation(r) and r.seq > first.seq)

    daemon.expect_no_sent()
    assert len(daemon.find(ReplyPlanned, purpose="vitality")) == 1
    assert daemon.find(TransportStatus, me_lid=OWNER_LID)  # the owner's LID is remembered


def _cut_after(rec: Recorded, ts: float) -> bool:
    return isinstance(rec.event, Compacted) and (rec.event.older_than or 0.0) > ts
