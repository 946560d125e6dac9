"""What the model reads for shapes without text of their own: vCards, places, polls, events."""

from __future__ import annotations

import tests.neonize_quiet  # noqa: F401  (first: see there)

# isort: split
import pytest
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as wa

from pipeline.transport.neonize import _content as content
from pipeline.transport.neonize._wrappers import MAX_WRAPPERS, unwrap


@pytest.mark.parametrize(
    ("card", "name", "numbers"),
    [
        (
            "BEGIN:VCARD\r\nVERSION:3.0\r\nN:Doe;Jane;;;\r\nFN:Jane Doe\r\n"
            "item1.TEL;waid=491701234567:+49 170 1234567\r\nitem1.X-ABLabel:Mobile\r\n"
            "TEL;type=HOME:+49 30 1234\r\nTEL:+49 30 1234\r\nEND:VCARD",
            "Jane Doe",
            ["+49 170 1234567", "+49 30 1234"],
        ),
        # folded lines, escapes, a vCard 4 tel: URI, no FN
        (
            "BEGIN:VCARD\nVERSION:4.0\nN:M\\;ller;Anna\\, Maria;;;\nTEL;VALUE=uri:tel:+43-1-5\n"
            " 55\nEND:VCARD",
            "Anna, Maria M;ller",
            ["+43-1-555"],
        ),
        # WhatsApp's waid without a written number; lower-case names
        ("begin:vcard\nfn:Bob\ntel;waid=4915112345678:\nend:vcard", "Bob", ["+4915112345678"]),
        ("", "", []),
        ("not a vcard at all", "", []),
    ],
)
def test_a_vcards_name_and_numbers(card: str, name: str, numbers: list[str]) -> None:
    assert content.vcard(card) == (name, numbers)


def test_a_card_without_a_name_in_its_vcard_uses_the_display_name() -> None:
    card = wa.ContactMessage(displayName="Bob", vcard="BEGIN:VCARD\nTEL:+1 555 0100\nEND:VCARD")
    assert content.contact(card) == "[contact card: Bob, +1 555 0100]"


def test_many_cards_are_cut_with_a_count() -> None:
    cards = [wa.ContactMessage(displayName=f"P{n}", vcard="") for n in range(25)]
    line = content.contacts(wa.ContactsArrayMessage(contacts=cards))
    assert line.startswith("[25 contact cards: P0; P1; ")
    assert line.endswith("; P19; and 5 more]")


def test_a_place_named_only_shows_no_made_up_coordinates() -> None:
    ev = wa.EventMessage(name="Meetup", location=wa.LocationMessage(name="Café Blau"))
    assert content.event(ev) == "[event: Meetup; at Café Blau]"


@pytest.mark.parametrize(
    ("start", "end", "when"),
    [
        (1_783_188_000, 1_783_206_000, "2026-07-04 18:00 to 23:00 UTC"),
        (1_783_188_000, 1_783_296_000, "2026-07-04 18:00 to 2026-07-06 00:00 UTC"),
        (1_783_188_000, 0, "2026-07-04 18:00 UTC"),
        (1_783_188_000, 1_000, "2026-07-04 18:00 UTC"),  # an end before the start
        (2**63 - 1, 2**63 - 1, None),  # out of any calendar: left out, no crash
        (-5, 0, None),
    ],
)
def test_an_events_time(start: int, end: int, when: str | None) -> None:
    ev = wa.EventMessage(name="X", startTime=start, endTime=end, isCanceled=True)
    expected = f"[event: X; {when}; canceled]" if when else "[event: X; canceled]"
    assert content.event(ev) == expected


@pytest.mark.parametrize(
    ("count", "choice"), [(0, "any number of choices"), (2, "up to 2 choices")]
)
def test_how_many_options_a_poll_allows(count: int, choice: str) -> None:
    options = [wa.PollCreationMessage.Option(optionName=o) for o in "abc"]
    poll = wa.PollCreationMessage(name="Pick", options=options, selectableOptionsCount=count)
    assert content.poll(poll) == f"[poll: Pick; options: a / b / c; {choice}]"


def test_lines_of_a_name_are_joined_not_kept() -> None:
    loc = wa.LocationMessage(
        degreesLatitude=1.5, degreesLongitude=-2.25, name="Line one\nline two", comment=" hi \n"
    )
    assert content.location(loc) == "[location: Line one line two; 1.500000, -2.250000] hi"


def test_unwrapping_stops_at_its_limit() -> None:
    message = wa.Message(conversation="inside")
    for _ in range(MAX_WRAPPERS):
        message = wa.Message(spoilerMessage=wa.FutureProofMessage(message=message))
    chain = unwrap(message)
    assert chain is not None
    assert chain[-1] == wa.Message(conversation="inside")
    too_deep = wa.Message(spoilerMessage=wa.FutureProofMessage(message=message))
    assert unwrap(too_deep) is None
