"""Times of day on the 24-hour clock before translation (model/text/clock.py)."""

from __future__ import annotations

import pytest

from model.text.clock import to_24_hour
from model.text.pipeline import TextPipeline


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("See you at 7 pm in front of the cinema.", "See you at 19:00 in front of the cinema."),
        ("Check-out is at 11 am.", "Check-out is at 11:00."),
        ("The meeting is at 3:30 p.m.", "The meeting is at 15:30."),  # its dot ends it
        ("Call at 7 p.m. Then we eat.", "Call at 19:00. Then we eat."),
        ("Call at 7 p.m. tomorrow.", "Call at 19:00 tomorrow."),
        (
            "Midnight is 12 am, noon 12 PM, 9AM is early.",
            "Midnight is 00:00, noon 12:00, 09:00 is early.",
        ),
        # no time of day: "am" without a number, units, hours that are no 12-hour time
        (
            "I am 5 amps short; 17 pm, 3.5 pm and 10:7 pm stay.",
            "I am 5 amps short; 17 pm, 3.5 pm and 10:7 pm stay.",
        ),
    ],
)
def test_english_times_of_day_become_24_hour_times(text: str, expected: str) -> None:
    assert to_24_hour(text, "en") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Cuộc họp bắt đầu lúc 3 giờ chiều.", "Cuộc họp bắt đầu lúc 15:00."),
        ("Hẹn gặp lúc 7 giờ tối nhé.", "Hẹn gặp lúc 19:00 nhé."),
        ("9 giờ sáng, 3h30 chiều, 3 giờ 30 phút chiều", "09:00, 15:30, 15:30"),
        (
            "12 giờ trưa, 1 giờ trưa, 11 giờ đêm, 12 giờ đêm, 2 giờ đêm",
            "12:00, 13:00, 23:00, 00:00, 02:00",
        ),
        # a part of the day that does not fit the hour is the writer's to settle
        ("9 giờ chiều, 15 giờ chiều, 12 giờ sáng", "9 giờ chiều, 15 giờ chiều, 12 giờ sáng"),
    ],
)
def test_vietnamese_times_of_day_become_24_hour_times(text: str, expected: str) -> None:
    assert to_24_hour(text, "vi") == expected


def test_other_languages_and_the_other_language_s_words_are_left_alone() -> None:
    assert to_24_hour("7 pm", "fr") == "7 pm"
    assert to_24_hour("7 giờ tối", "en") == "7 giờ tối"
    assert to_24_hour("7 pm", "vi") == "7 pm"


def test_the_pipeline_carries_the_time_across_as_a_number() -> None:
    """The time is on the 24-hour clock before masking, so it rides on a placeholder."""
    pipeline = TextPipeline(None, masks_spans=True, masks_identifiers=False)
    segment = pipeline.for_model("See you at 7 pm.")
    assert "19:00" not in segment.text and "pm" not in segment.text
    assert pipeline.from_model(segment.text, segment) == "See you at 19:00."
