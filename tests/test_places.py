"""Vietnam's places carried across in the other language's names."""

from __future__ import annotations

import pytest

from model.text.pipeline import Mask, Segment
from model.text.places import PLACES, find_places
from model.text.protect import PLACEHOLDERS


def places(text: str, source: str, target: str) -> list[tuple[str, str | None]]:
    return [(span.text, span.rendering) for span in find_places(text, source, target)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I live in Hanoi.", [("Hanoi", "Hà Nội")]),
        (
            "From Ho Chi Minh City to Da Nang and Danang.",
            [
                ("Ho Chi Minh City", "Thành phố Hồ Chí Minh"),
                ("Da Nang", "Đà Nẵng"),
                ("Danang", "Đà Nẵng"),
            ],
        ),
        ("Ha Long Bay, not Ha Long.", [("Ha Long Bay", "Vịnh Hạ Long"), ("Ha Long", "Hạ Long")]),
        ("I met Hà Nội friends.", [("Hà Nội", "Hà Nội")]),  # written the Vietnamese way: as is
        ("the hue of the sky", []),  # a word, not a city
        ("Hanoiese, xHanoi", []),
    ],
)
def test_english_places_in_vietnamese(text: str, expected: list[tuple[str, str]]) -> None:
    assert places(text, "en", "vi") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Tôi sống ở Hà Nội.", [("Hà Nội", "Hanoi")]),
        ("Anh ấy ở Thành phố Hồ Chí Minh.", [("Thành phố Hồ Chí Minh", "Ho Chi Minh City")]),
        ("Tôi ở TP.HCM và Đà Nẵng.", [("TP.HCM", "Ho Chi Minh City"), ("Đà Nẵng", "Da Nang")]),
        ("Toi song o Ha Noi.", [("Ha Noi", "Hanoi")]),  # typed without its marks
        ("Tỉnh Hòa Bình đẹp.", [("Hòa Bình", "Hoa Binh")]),
        ("Hòa bình là quan trọng.", []),  # peace, not the province
        ("tôi sống ở hà nội", []),  # no capital: not written as a name
    ],
)
def test_vietnamese_places_in_english(text: str, expected: list[tuple[str, str]]) -> None:
    assert places(text, "vi", "en") == expected


def test_every_place_has_both_names_and_no_name_two_places() -> None:
    for english, vietnamese in PLACES:
        assert english and vietnamese
    for source in ("en", "vi"):
        for english, vietnamese in PLACES:
            for name in english if source == "en" else vietnamese:
                found = find_places(f"Ở {name} .", source, "vi" if source == "en" else "en")
                assert [span.text for span in found] == [name], name


def test_a_place_and_a_date_in_one_sentence() -> None:
    step = Mask(enabled=True, known=lambda word: True, languages=("en", "vi"))
    (masked,) = step.apply([Segment("See you in Hanoi on March 5.")])
    assert masked.originals == ("Hà Nội", "ngày 5 tháng 3")
    first, second = PLACEHOLDERS[:2]
    (restored,) = step.apply_reverse([masked.replaced(text=f"Hẹn gặp ở {first} vào {second}.")])
    assert restored.text == "Hẹn gặp ở Hà Nội vào ngày 5 tháng 3."
