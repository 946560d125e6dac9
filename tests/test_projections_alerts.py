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
)
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
