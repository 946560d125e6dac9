"""Rotation inside the running daemon: old events go on schedule, answering goes on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from events.model import Compacted, ConfigLoaded, Recorded, ReplyPlanned
from tests.e2e.conftest import MakeDaemon

# Keep less than a second of events; rotate about every 1.1 s.
INTERVAL_HOURS = 0.0003
ROTATION = {"retention_days": 0.00001, "interval_hours": INTERVAL_HOURS}


def is_rotation(rec: Recorded) -> bool:
    return isinstance(rec.event, Compacted) and rec.event.reason == "rotation"


def test_the_daemon_rotates_its_log_on_schedule_and_keeps_answering(make_daemon: MakeDaemon):
    daemon = make_daemon({"rotation": ROTATION})

    first = daemon.wait_for(is_rotation)
    assert not daemon.find(ReplyPlanned, purpose="startup")
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
