"""When the LLM's failures are the owner's business: at once, or after some in a row."""

from __future__ import annotations

import pytest

from events.model import (
    AccountRestricted,
    AlertKind,
    AnyEvent,
    LlmCompleted,
    LlmFailed,
    MediaTranscribed,
    OwnerAlerted,
    Recorded,
    TranscriptionFailed,
    TransportStatus,
)
from events.units import HOUR, MINUTE
from projections import alerts
from projections.fold import fold

ALICE = "491701111111@s.whatsapp.net"


def owed_after(*events: AnyEvent) -> dict[AlertKind, str]:
    state = fold([Recorded(n, float(n), ev) for n, ev in enumerate(events, start=1)]).alerts
    return alerts.owed(state)


def failed(status: int | None, error: str = "boom", *, final: bool = True) -> LlmFailed:
    return LlmFailed(chat=ALICE, call_id="C", status=status, error=error, final=final)


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 422])
def test_a_final_refusal_no_retry_mends_is_owed_at_once(status: int) -> None:
    assert owed_after(failed(status, "refused")) == {"llm_failing": "refused"}


@pytest.mark.parametrize("status", [408, 409, 429, 500, 503, None])
def test_transient_failures_are_owed_after_the_threshold(status: int | None) -> None:
    assert owed_after(failed(status), failed(status)) == {}
    assert owed_after(failed(status), failed(status), failed(status)) == {
        "llm_failing": "3 LLM turns in a row failed: boom"
    }


def test_retries_are_no_failures_and_an_answer_ends_the_episode() -> None:
    assert owed_after(*[failed(500, final=False)] * 5) == {}
    settled = OwnerAlerted(kind="llm_failing", ok=True)
    assert owed_after(failed(401), settled, failed(401)) == {}  # told once
    answered = LlmCompleted(chat=ALICE, call_id="D", content="hi")
    assert owed_after(failed(401), settled, answered, failed(402, "no credit")) == {
        "llm_failing": "no credit"
    }


def unheard(status: int | None, error: str = "boom") -> TranscriptionFailed:
    return TranscriptionFailed(chat=ALICE, msg_id="V", status=status, error=error, final=True)


def test_a_refused_transcription_is_owed_at_once_and_ends_only_with_a_transcript() -> None:
    assert owed_after(unheard(401, "invalid key")) == {"transcription_failing": "invalid key"}
    settled = OwnerAlerted(kind="transcription_failing", ok=True)
    answered = LlmCompleted(chat=ALICE, call_id="D", content="hi")
    # The chat model answering does not mean voice notes are heard again: told once.
    assert owed_after(unheard(401), settled, answered, unheard(401)) == {}
    heard = MediaTranscribed(chat=ALICE, msg_id="W", text="hello", model="whisper-1")
    assert owed_after(unheard(401), settled, heard, unheard(401, "again")) == {
        "transcription_failing": "again"
    }


def test_transient_transcription_failures_are_owed_after_the_threshold() -> None:
    assert owed_after(unheard(503), unheard(None)) == {}
    assert owed_after(unheard(503), unheard(None), unheard(500)) == {
        "transcription_failing": "3 voice notes in a row could not be transcribed: boom"
    }
    # LLM failures and transcription failures are counted apart.
    assert owed_after(failed(500), unheard(500), failed(500)) == {}


def test_an_alert_quoting_a_chat_s_failure_names_that_chat() -> None:
    """An API's error may echo the user's text: forget takes such an alert with the chat."""
    events: list[AnyEvent] = [failed(400, "cannot take 'my plans'"), unheard(401)]
    state = fold([Recorded(n, float(n), ev) for n, ev in enumerate(events, start=1)]).alerts

    assert alerts.quoted_chat(state, "llm_failing") == ALICE
    assert alerts.quoted_chat(state, "transcription_failing") == ALICE
    assert alerts.quoted_chat(state, "budget") is None


@pytest.mark.parametrize(
    ("restricted", "said"),
    [
        (AccountRestricted(code=463, detail="reach-out timelock"), "reach-out timelock"),
        (AccountRestricted(code=479), "error 479"),
        (AccountRestricted(), "WhatsApp gave no reason"),  # not "error None"
    ],
)
def test_a_restriction_is_owed_with_what_whatsapp_said(
    restricted: AccountRestricted, said: str
) -> None:
    assert owed_after(restricted) == {"restricted": said}


# -- a webhook that did not take an alert -----------------------------------


def state_after(*timed: tuple[float, AnyEvent]) -> alerts.State:
    return fold([Recorded(n, ts, ev) for n, (ts, ev) in enumerate(timed, start=1)]).alerts


def not_taken(error: str = "HTTP 503") -> OwnerAlerted:
    return OwnerAlerted(kind="logged_out", ok=False, detail="logged out", error=error)


LOGGED_OUT = TransportStatus(state="logged_out", detail="logged out")


def test_an_alert_the_webhook_did_not_take_is_tried_again_with_backoff_for_a_day() -> None:
    """It was settled by the first failed try (three POSTs, 5 s apart): a short outage
    of the webhook lost a logout for good."""
    t = 1_000.0
    timed: list[tuple[float, AnyEvent]] = [(t, LOGGED_OUT), (t, not_taken())]
    assert alerts.retries(state_after(*timed)) == {"logged_out": t + MINUTE}
    assert alerts.owed(state_after(*timed)) == {}  # the owner's chat is not told again

    waits = []
    last = t
    while (due := alerts.retries(state_after(*timed)).get("logged_out")) is not None:
        waits.append(due - last)
        last = due
        timed.append((due, not_taken()))
    assert waits[:6] == [MINUTE, 5 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR, HOUR]
    assert last <= t + alerts.RETRY_FOR < last + HOUR  # then given up
    retry = alerts.retrying(state_after(*timed), "logged_out")
    assert retry is not None
    assert (retry.first, retry.last, retry.failures) == (t, last, len(waits) + 1)


@pytest.mark.parametrize(
    "then",
    [
        OwnerAlerted(kind="logged_out", ok=True, detail="logged out"),  # taken
        TransportStatus(state="connected"),  # the episode is over
    ],
)
def test_a_retry_ends_when_the_webhook_takes_it_or_the_episode_ends(then: AnyEvent) -> None:
    state = state_after((1.0, LOGGED_OUT), (2.0, not_taken()), (70.0, then))
    assert alerts.retries(state) == {}
    assert alerts.retrying(state, "logged_out") is None


def test_an_alert_with_no_webhook_to_fail_is_not_retried() -> None:
    # No webhook, and WhatsApp is what failed: nothing to try again by.
    state = state_after((1.0, LOGGED_OUT), (2.0, not_taken(error="")))
    assert alerts.retries(state) == {}
