"""Sentences that end in a letter or a digit: translated with a full stop that comes off."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.text.full_stop import drop_full_stop, ellipsis_like_source, ends_open
from model.translator import Translator

BUNDLED_MODEL = Path(__file__).resolve().parents[1] / "models" / "en-vi"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("water", True),
        ("Room 404", True),
        ("write to support@example.com", True),
        ("Xin chào", True),
        ("Done.", False),
        ("Really?", False),
        ("Wow!", False),
        ("Ingredients:", False),
        ('He said "yes"', False),
        ("(see below)", False),
        ("C++", False),
        ("", False),
    ],
)
def test_ends_open(text: str, expected: bool) -> None:
    assert ends_open(text) is expected


@pytest.mark.parametrize(
    ("translation", "expected"),
    [
        ("Máy tính.", "Máy tính"),
        ("Máy tính .", "Máy tính"),
        ("Máy tính. ", "Máy tính"),
        ("Xin chào!", "Xin chào!"),
        ("Chờ đã...", "Chờ đã..."),
        ("Máy tính", "Máy tính"),
        ("", ""),
    ],
)
def test_drop_full_stop_takes_off_one_final_full_stop(translation: str, expected: str) -> None:
    assert drop_full_stop(translation) == expected


@pytest.mark.parametrize(
    ("translation", "source", "expected"),
    [
        ("Đang tải.", "Loading...", "Đang tải..."),
        ("Đang tải…", "Loading...", "Đang tải..."),
        ("Đang lưu tập tin...", "Saving file…", "Đang lưu tập tin…"),
        ("Vui lòng chờ", "Please wait...", "Vui lòng chờ..."),
        ("Thật sao?", "Really...", "Thật sao?"),  # a question stays one
        ("Đang tải.", "Loading.", "Đang tải."),  # no ellipsis in the source
        ("...", "...", "..."),
    ],
)
def test_a_translation_ends_with_its_sources_ellipsis(
    translation: str, source: str, expected: str
) -> None:
    assert ellipsis_like_source(translation, source) == expected


def test_an_open_sentence_is_searched_with_a_full_stop(tiny_model_dir: Path) -> None:
    translator = Translator.from_dir(tiny_model_dir, device="cpu")
    open_sentence = translator.encode("you see the cat")
    closed = translator.encode("you see the cat.")
    assert open_sentence.segment.full_stop and not closed.segment.full_stop
    assert open_sentence.chunks == closed.chunks
    assert open_sentence.source == "you see the cat"  # what the answer reports
    (as_open,) = translator.translate_sentences(
        ["you see the cat"], translator.options(beam=2, n_best=2)
    )
    (as_closed,) = translator.translate_sentences(
        ["you see the cat."], translator.options(beam=2, n_best=2)
    )
    assert [h.text for h in as_open.hypotheses] == [
        drop_full_stop(h.text) for h in as_closed.hypotheses
    ]
    assert [h.score for h in as_open.hypotheses] == [h.score for h in as_closed.hypotheses]


@pytest.mark.skipif(not BUNDLED_MODEL.is_dir(), reason="needs the bundled model")
def test_single_words_and_list_items_get_short_translations() -> None:
    """Without the full stop the bundled model ran on: ``computer`` gave ``Những chiếc máy
    tính máy tính xách máy tính máy tính``."""
    translator = Translator.from_dir(BUNDLED_MODEL, device="cpu")
    words = ["water", "computer", "milk", "book", "house", "coffee"]
    translations = translator.translate(words)
    for word, translation in zip(words, translations, strict=True):
        assert 1 <= len(translation.split()) <= 3, (word, translation)
        assert not translation.endswith("."), (word, translation)
    (listed,) = translator.translate(["- apples\n- bananas\n- milk"])
    lines = listed.split("\n")
    assert len(lines) == 3 and all(line.startswith("- ") for line in lines)
    assert all(1 <= len(line.split()) <= 4 for line in lines), listed
