"""The word "năm" (year) before a placeholder that stands for no year comes out."""

from __future__ import annotations

import pytest

from model.text.false_years import drop_false_years
from model.text.protect import PLACEHOLDERS

ONE, TWO = PLACEHOLDERS[0], PLACEHOLDERS[1]


@pytest.mark.parametrize(
    ("translation", "originals", "source", "expected"),
    [
        (f"Windows năm {ONE} đã ra mắt", ("11",), "Windows 11 is out", f"Windows {ONE} đã ra mắt"),
        (f"Gọi {ONE} năm {TWO}", ("0912", "345"), "Call 0912 345", f"Gọi {ONE} {TWO}"),
        (f"Năm {ONE} cô ấy kết hôn", ("17",), "At 17 she married", f"{ONE} cô ấy kết hôn"),
        (f"Viết vào năm {ONE}", ("a@b.org",), "Write to a@b.org", f"Viết vào {ONE}"),
    ],
)
def test_a_false_year_word_is_dropped(
    translation: str, originals: tuple[str, ...], source: str, expected: str
) -> None:
    assert drop_false_years(translation, originals, source) == expected


@pytest.mark.parametrize(
    ("translation", "originals", "source"),
    [
        (f"vào tháng 10 năm {ONE}", ("2021",), "in October 2021"),
        (f"vào năm {ONE}", ("1990",), "in 1990"),
        (f"vào năm {ONE}", ("71",), "there in '71"),
        (f"những năm {ONE}", ("80",), "until the '80s"),
        (f"những năm {ONE}", ("80",), "in the 80s"),
        (f"năm {ONE} tuổi", ("17",), "17 years old"),  # the source speaks of years
        (f"năm {ONE}", ("iPhone",), "five iPhone cases"),  # "năm" is also five
        (f"vào năm {TWO}", ("11",), "in 11"),  # a slot the source does not have
        (f"Chănm {ONE}", ("11",), "Windows 11"),  # not the word năm
    ],
)
def test_a_possible_year_word_stays(
    translation: str, originals: tuple[str, ...], source: str
) -> None:
    assert drop_false_years(translation, originals, source) == translation
