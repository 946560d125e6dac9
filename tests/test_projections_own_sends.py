"""Echo: the bot's own sends recognised by WhatsApp id or by text."""

from events.model import AnyEvent, Recorded, ReplyPlanned, ReplySent
from projections import own_sends
from projections.fold import fold

CHAT = "491700000000@s.whatsapp.net"
OTHER = "491701111111@s.whatsapp.net"


def folded(*events: AnyEvent) -> own_sends.State:
    records = [Recorded(i, 1000.0 + i, e) for i, e in enumerate(events, 1)]
    return fold(records, [own_sends.PROJECTION]).own_sends


def planned(
    n: int, text: str = "Hello  there,\nfriend ", wa_id: str | None = None, chat: str = CHAT
) -> ReplyPlanned:
    return ReplyPlanned(chat=chat, reply_id=f"r{n}", purpose="reply", text=text, wa_id=wa_id)


def test_matches_by_id_from_plan_or_confirmation():
    state = folded(
        planned(1, wa_id="PRE1"),
        planned(2),
        ReplySent(chat=CHAT, reply_id="r2", wa_id="W2", sent_at=1.0),
    )
    assert own_sends.match(state, CHAT, "PRE1", "whatever") == "id"
    assert own_sends.match(state, CHAT, "W2", "") == "id"
    assert own_sends.match(state, OTHER, "W2", "") is None


def test_matches_by_text_ignoring_whitespace():
    state = folded(planned(1))
    assert own_sends.match(state, CHAT, "X", "Hello there, friend") == "text"
    assert own_sends.match(state, CHAT, "X", "  Hello\tthere,  friend") == "text"
    assert own_sends.match(state, CHAT, "X", "Hello there, friends") is None
    assert own_sends.match(state, OTHER, "X", "Hello there, friend") is None


def test_blank_text_never_matches():
    state = folded(planned(1, text="  \n"))
    assert own_sends.match(state, CHAT, "X", "") is None
    assert own_sends.digest(" ") == 0


def test_memory_is_bounded_but_keeps_the_latest_sends():
    state = folded(*[planned(n, text=f"reply {n}", wa_id=f"W{n}") for n in range(500)])
    sent = state.chats[CHAT]
    assert own_sends.KEEP <= len(sent.wa_ids) <= own_sends._TRIM_AT
    assert own_sends.KEEP <= len(sent.digests) <= own_sends._TRIM_AT
    assert own_sends.match(state, CHAT, "W499", "") == "id"
    assert own_sends.match(state, CHAT, "W450", "") == "id"
    assert own_sends.match(state, CHAT, "W0", "reply 0") is None
    assert own_sends.match(state, CHAT, "X", "reply 451") == "text"


def test_a_repeated_text_is_remembered_as_recent():
    events = [planned(0, text="same")] + [planned(n, text=f"t{n}") for n in range(1, 90)]
    events.append(planned(90, text="same"))
    # Fewer than KEEP after the repeat: kept as recent, where its first send is long evicted.
    events += [planned(n, text=f"u{n}") for n in range(91, 91 + own_sends.KEEP - 1)]
    assert own_sends.match(folded(*events), CHAT, "X", "same") == "text"
    assert own_sends.match(folded(*events[:90]), CHAT, "X", "same") is None
