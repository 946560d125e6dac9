"""Reply text with a numbered source list that reads well on WhatsApp."""

from events.model import Citation
from pipeline.llm import format_reply

ECB = Citation(url="https://www.ecb.europa.eu/press/pr/2026", title="Monetary policy decisions")
REUTERS = Citation(url="https://www.reuters.com/markets/x", title="ECB holds rates")


def test_no_citations_means_just_the_content() -> None:
    assert format_reply("  Hello [1] there.\n", []) == "Hello [1] there."


def test_sources_follow_a_blank_line_with_domain_and_title() -> None:
    assert format_reply("Rates held [1][2].", [ECB, REUTERS]) == (
        "Rates held [1][2].\n"
        "\n"
        "Sources:\n"
        "[1] ecb.europa.eu \u2013 Monetary policy decisions\n"
        "[2] reuters.com \u2013 ECB holds rates"
    )


def test_duplicate_urls_are_listed_once_and_markers_renumbered() -> None:
    other = Citation(url="https://example.org/a", title="")
    text = format_reply("A [1], B [2], again [3], C [4].", [ECB, REUTERS, ECB, other])
    assert text.startswith("A [1], B [2], again [1], C [3].\n\nSources:\n")
    assert text.endswith("[2] reuters.com \u2013 ECB holds rates\n[3] example.org")


def test_markers_to_sources_beyond_the_limit_are_removed() -> None:
    cites = [Citation(url=f"https://s{n}.example/", title=f"T{n}") for n in range(1, 5)]
    text = format_reply("One [1]. Four [4]. Two[2].", cites, max_sources=2)
    assert text == (
        "One [1]. Four. Two[2].\n\nSources:\n[1] s1.example \u2013 T1\n[2] s2.example \u2013 T2"
    )


def test_numbers_that_are_not_citation_markers_are_left_alone() -> None:
    assert format_reply("xs[0] and [9]", [ECB]).startswith("xs[0] and [9]\n\nSources:")


def test_long_or_multiline_titles_are_shortened_and_flat() -> None:
    cite = Citation(url="http://news.example.com/a?b=c", title="A very\nlong " + "word " * 30)
    line = format_reply("x", [cite]).splitlines()[-1]
    assert line.startswith("[1] news.example.com \u2013 A very long word")
    assert line.endswith("…")
    assert len(line) <= 4 + len("news.example.com") + 3 + 60


def test_title_equal_to_domain_and_odd_urls_stay_readable() -> None:
    cites = [Citation(url="https://example.com", title="example.com"), Citation(url="not a url")]
    assert format_reply("", cites) == "Sources:\n[1] example.com\n[2] not a url"
