"""A loop that keeps failing says so once, not at every poll, and says when it recovers."""

from __future__ import annotations

import logging

import pytest

from events.protocol import LogUnavailable
from pipeline.daemon._failures import Failures
from pipeline.logs import get_logger


def _passes(failures: Failures, outcomes: list[Exception | None], **fields: str) -> None:
    for outcome in outcomes:
        with failures.guard(**fields):
            if outcome is not None:
                raise outcome


def test_a_database_away_for_many_polls_is_one_line_then_one_recovery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    away = LogUnavailable("postgresql://db/test: lost the connection to PostgreSQL")
    _passes(Failures(get_logger("wabot.test"), "agent_pass_failed"), [away] * 50 + [None, None])

    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert len(lines) == 2, lines
    (first_level, first), (second_level, second) = lines
    assert first_level == "WARNING"
    assert "agent_pass_failed" in first
    assert "lost the connection" in first
    assert second_level == "INFO"
    assert "agent_pass_recovered" in second
    assert "Traceback" not in caplog.text


def test_a_bug_keeps_its_traceback_and_a_new_error_is_logged_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failures = Failures(get_logger("wabot.test"), "send_pass_failed")
    _passes(failures, [KeyError("x"), KeyError("x"), ValueError("y"), None, KeyError("x")])

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.exc_info[0] for r in errors if r.exc_info] == [KeyError, ValueError, KeyError]


def test_failures_of_different_chats_are_reported_separately(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failures = Failures(get_logger("wabot.test"), "chat_work_failed")
    _passes(failures, [OSError("disk full")] * 3, chat="a@s.whatsapp.net")
    _passes(failures, [OSError("disk full")] * 3, chat="b@s.whatsapp.net")

    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 2
