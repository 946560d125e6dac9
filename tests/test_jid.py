"""Phone numbers and JIDs: ASCII digits only (issue 9, item 18)."""

from __future__ import annotations

import pytest

from events.jid import InvalidJid, normalize, phone_digits


def in_script(digits: str, zero: str) -> str:
    """``digits`` written with the digits of the script whose zero is ``zero``."""
    return "".join(chr(ord(zero) + int(d)) for d in digits)


ARABIC_INDIC = in_script("491701111111", "\u0660")
FULLWIDTH = in_script("491701111111", "\uff10")
DEVANAGARI = in_script("491701111111", "\u0966")


@pytest.mark.parametrize("digits", [ARABIC_INDIC, FULLWIDTH, DEVANAGARI])
def test_digits_of_other_scripts_are_refused_with_a_clear_error(digits: str) -> None:
    with pytest.raises(InvalidJid, match=r"digits 0-9 with country code"):
        phone_digits("+" + digits)
    with pytest.raises(InvalidJid):
        normalize(digits)
    with pytest.raises(InvalidJid):
        normalize(f"{digits}@s.whatsapp.net")


def test_ascii_numbers_still_work() -> None:
    assert phone_digits("+49 170-111 1111") == "491701111111"
    assert normalize("491701111111:3@s.whatsapp.net") == "491701111111@s.whatsapp.net"
