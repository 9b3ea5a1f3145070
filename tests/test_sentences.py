"""The rule-based sentence splitter and its join."""

from __future__ import annotations

import pytest

from model.text.sentences import (
    close_sentence,
    closed_sentences,
    is_line_break,
    join_sentences,
    split_sentences,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("   ", []),
        ("Hello world", ["Hello world"]),
        ("Hello world.", ["Hello world."]),
        ("It rains. We stay home!", ["It rains.", "We stay home!"]),
        ("Really?! Yes… I think so.", ["Really?!", "Yes…", "I think so."]),
        ("Wait... What?", ["Wait...", "What?"]),
        ('He said "Stop." Then he left.', ['He said "Stop."', "Then he left."]),
        ('It ended. "Why?" she asked.', ["It ended.", '"Why?" she asked.']),
        ("I counted. 42 were left.", ["I counted.", "42 were left."]),
        ("(It was late.) Everyone left.", ["(It was late.)", "Everyone left."]),
        # no split before a lower-case word
        ("It costs 5 dollars. or more", ["It costs 5 dollars. or more"]),
        # abbreviations and initials
        ("Mr. Smith met Dr. Jones.", ["Mr. Smith met Dr. Jones."]),
        ("See Fig. 3 and No. 5 here.", ["See Fig. 3 and No. 5 here."]),
        ("The U.S. Army came. It left.", ["The U.S. Army came.", "It left."]),
        ("J. K. Rowling wrote it.", ["J. K. Rowling wrote it."]),
        ("Use tools, e.g. Python. Then test.", ["Use tools, e.g. Python.", "Then test."]),
        ("We met at 5 p.m. Nobody came.", ["We met at 5 p.m. Nobody came."]),
        # decimals and dots without a following space
        ("Pi is 3.14. It is irrational.", ["Pi is 3.14.", "It is irrational."]),
        ("Visit example.com. It is free.", ["Visit example.com.", "It is free."]),
        # non-ASCII capitals start sentences too
        ("Done. Élodie arrived.", ["Done.", "Élodie arrived."]),
    ],
)
def test_split_within_a_line(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_line_breaks_always_split_and_are_kept() -> None:
    text = "First line. Second sentence\nno capital here\n\n  Third.\r\nLast"
    segments = split_sentences(text)
    assert segments == [
        "First line.",
        "Second sentence",
        "\n",
        "no capital here",
        "\n\n",
        "  ",
        "Third.",
        "\r\n",
        "Last",
    ]
    assert [is_line_break(s) for s in segments] == [
        False,
        False,
        True,
        False,
        True,
        True,
        False,
        True,
        False,
    ]
    assert join_sentences(segments) == (
        "First line. Second sentence\nno capital here\n\n  Third.\r\nLast"
    )


def test_leading_and_trailing_line_breaks_survive() -> None:
    segments = split_sentences("\nHello. World.\n")
    assert segments == ["\n", "Hello.", "World.", "\n"]
    assert join_sentences(["\n", "Xin chào.", "Thế giới.", "\n"]) == "\nXin chào. Thế giới.\n"


def test_join_skips_empty_translations() -> None:
    assert join_sentences(["A.", "", "B."]) == "A. B."
    assert join_sentences([]) == ""


def test_bullets_numbers_and_indentation_are_layout_kept_line_for_line() -> None:
    text = (
        "Shopping list:\n- 2kg apples\n* Milk. Fresh if possible.\n  • Eggs\n"
        "1. Call Anna\n2) Pay the rent\n  (3) Water the plants\na) Fix the door\n\tB) Done"
    )
    segments = split_sentences(text)
    assert segments == [
        "Shopping list:",
        "\n",
        "- ",
        "2kg apples",
        "\n",
        "* ",
        "Milk.",
        "Fresh if possible.",
        "\n",
        "  • ",
        "Eggs",
        "\n",
        "1. ",
        "Call Anna",
        "\n",
        "2) ",
        "Pay the rent",
        "\n",
        "  (3) ",
        "Water the plants",
        "\n",
        "a) ",
        "Fix the door",
        "\n",
        "\tB) ",
        "Done",
    ]
    # Translating every sentence (here: upper-casing it) keeps every line and every marker.
    translated = [s if is_line_break(s) else s.upper() for s in segments]
    out = join_sentences(translated)
    assert out.splitlines() == [
        "SHOPPING LIST:",
        "- 2KG APPLES",
        "* MILK. FRESH IF POSSIBLE.",
        "  • EGGS",
        "1. CALL ANNA",
        "2) PAY THE RENT",
        "  (3) WATER THE PLANTS",
        "a) FIX THE DOOR",
        "\tB) DONE",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-5 degrees outside.", ["-5 degrees outside."]),  # a sign, not a bullet
        ("A. Smith wrote it.", ["A. Smith wrote it."]),  # an initial, not an item
        ("- ", ["-"]),  # a marker with nothing after it stays as it is
        ("1.5 litres of milk", ["1.5 litres of milk"]),
    ],
)
def test_what_is_not_a_list_marker(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_a_lone_marker_is_layout_even_when_stripped() -> None:
    for marker in ("-", "1.", "a)", "•", "  "):
        assert is_line_break(marker)
    for sentence in ("Milk", "-5", "1.5", "A.", "I."):
        assert not is_line_break(sentence)


def test_a_sentence_another_follows_on_its_line_is_closed_with_its_sources_punctuation() -> None:
    """An alternative joins the k-th hypothesis of each sentence, and a lower-ranked one may
    end on a comma or a word: ``Good morning. Where is the station?`` must not come back as
    ``Xin chào, Bạn ở đâu?``."""
    sources = ["Good morning.", "Where is the station?", "It is late."]
    assert join_sentences(["Xin chào,", "Bạn ở đâu", "Muộn rồi"], sources) == (
        "Xin chào. Bạn ở đâu? Muộn rồi"  # the last one ends as the model wrote it
    )
    assert join_sentences(["Chào buổi sáng.", "Ga ở đâu?"], sources[:2]) == (
        "Chào buổi sáng. Ga ở đâu?"
    )


def test_only_sentences_followed_on_the_same_line_are_closed() -> None:
    segments = ["Xin chào", "\n", "- ", "Tạm biệt", "", "Hẹn gặp lại"]
    closed = closed_sentences(segments, ["Hello!", "\n", "- ", "Bye.", "", "See you"])
    assert closed == ["Xin chào", "\n", "- ", "Tạm biệt.", "", "Hẹn gặp lại"]
    assert join_sentences(segments) == "Xin chào\n- Tạm biệt. Hẹn gặp lại"  # no sources: "."


@pytest.mark.parametrize(
    ("translation", "source", "closed"),
    [
        ("Xin chào", "Hello!", "Xin chào!"),
        ("Xin chào.", "Hello!", "Xin chào."),
        ("Anh ấy nói “chào”", "He said “hi.”", "Anh ấy nói “chào”."),
        ("Anh ấy nói “chào.”", "He said “hi.”", "Anh ấy nói “chào.”"),
        ("Và rồi —", "And then...", "Và rồi..."),
        ("Tăng 5%", "Up 5%.", "Tăng 5%."),
        ("", "Hello.", ""),
    ],
)
def test_close_sentence(translation: str, source: str, closed: str) -> None:
    assert close_sentence(translation, source) == closed
