"""Dates and weekdays carried across as spans written the target language's way."""

from __future__ import annotations

import pytest

from model.text.calendar import find_calendar, tidy_before_dates
from model.text.pipeline import Mask, Segment
from model.text.protect import PLACEHOLDERS


def renderings(text: str, source: str, target: str) -> list[tuple[str, str]]:
    return [(found.text, found.rendering) for found in find_calendar(text, source, target)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The meeting is on March 5th.", [("March 5th", "ngày 5 tháng 3")]),
        (
            "Due June 30, 2025 or Jul 4",
            [("June 30, 2025", "ngày 30 tháng 6 năm 2025"), ("Jul 4", "ngày 4 tháng 7")],
        ),
        ("Born on 5 May 1990.", [("5 May 1990", "ngày 5 tháng 5 năm 1990")]),
        ("on the 21st of December", [("the 21st of December", "ngày 21 tháng 12")]),
        ("It is due on 3 March.", [("3 March", "ngày 3 tháng 3")]),  # the full stop is not its
        ("Open Mar. 5 to Dec. 1", [("Mar. 5", "ngày 5 tháng 3"), ("Dec. 1", "ngày 1 tháng 12")]),
        ("We moved in March 2020.", [("March 2020", "tháng 3 năm 2020")]),
        ("See you on Wednesday!", [("Wednesday", "thứ Tư")]),
        ("Closed on Sundays.", [("Sundays", "Chủ nhật")]),
        ("MEETING ON friday", [("friday", "thứ Sáu")]),
        ("Wednesday, March 5", [("Wednesday", "thứ Tư"), ("March 5", "ngày 5 tháng 3")]),
        # not dates: a verb, a word, a month alone, an impossible day, digits
        ("May I help you? You may 2 times.", []),
        ("They march 5 km.", []),
        ("They mar 5 walls.", []),
        ("In August it rains.", []),
        ("March 32", []),
        ("on 05/03/2024", []),
    ],
)
def test_english_dates_and_weekdays_in_vietnamese(
    text: str, expected: list[tuple[str, str]]
) -> None:
    assert renderings(text, "en", "vi") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Cuộc họp vào ngày 5 tháng 3 năm 2024.", [("ngày 5 tháng 3 năm 2024", "March 5, 2024")]),
        ("Hạn chót là ngày 30 tháng 6.", [("ngày 30 tháng 6", "June 30")]),
        ("Tôi sinh vào tháng 8 năm 1990.", [("tháng 8 năm 1990", "August 1990")]),
        ("Hẹn gặp vào thứ tư.", [("thứ tư", "Wednesday")]),
        ("Thứ Bảy này rảnh không?", [("Thứ Bảy", "Saturday")]),
        ("từ thứ 2 đến thứ 6", [("thứ 2", "Monday"), ("thứ 6", "Friday")]),
        ("Cửa hàng đóng cửa vào chủ nhật.", [("chủ nhật", "Sunday")]),
        # the ordinal "second", three months, a month alone: left to the model
        ("Đây là lần thứ hai tôi đến.", []),
        ("Thứ hai, chúng ta cần nói về tiền.", []),
        ("Tôi ở đó 3 tháng năm ngoái.", []),
        ("tháng 13 năm 2020", []),
    ],
)
def test_vietnamese_dates_and_weekdays_in_english(
    text: str, expected: list[tuple[str, str]]
) -> None:
    assert renderings(text, "vi", "en") == expected


def test_other_pairs_have_no_dates() -> None:
    assert find_calendar("See you on Monday, March 5.", "en", "fr") == []


def test_the_word_before_a_date_is_mended() -> None:
    first = PLACEHOLDERS[0]
    assert tidy_before_dates(f"See you in {first}.", ("Wednesday",), "en") == f"See you on {first}."
    assert tidy_before_dates(f"In {first}, we met.", ("March 5",), "en") == f"On {first}, we met."
    assert (
        tidy_before_dates(f"I moved in {first}.", ("March 2020",), "en") == f"I moved in {first}."
    )
    assert tidy_before_dates(f"Họp ngày {first}.", ("ngày 5 tháng 3",), "vi") == f"Họp {first}."
    assert tidy_before_dates(f"Họp vào {first}.", ("ngày 5 tháng 3",), "vi") == f"Họp vào {first}."
    assert tidy_before_dates(f"Họp trên {first}.", ("thứ Bảy",), "vi") == f"Họp vào {first}."
    assert tidy_before_dates(f"Ở {first}.", ("Hà Nội",), "vi") == f"Ở {first}."  # a place


def test_the_mask_step_puts_back_the_rendering() -> None:
    step = Mask(enabled=True, known=lambda word: True, languages=("en", "vi"))
    (masked,) = step.apply([Segment("See you on Wednesday, March 5th at 15:00.")])
    assert masked.originals == ("thứ Tư", "ngày 5 tháng 3", "15:00")
    first, second, third = PLACEHOLDERS[:3]
    assert masked.text == f"See you on {first}, {second} at {third}."
    translation = f"Hẹn gặp bạn vào {first}, ngày {second} lúc {third}."
    (restored,) = step.apply_reverse([masked.replaced(text=translation)])
    assert restored.text == "Hẹn gặp bạn vào thứ Tư, ngày 5 tháng 3 lúc 15:00."
