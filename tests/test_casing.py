"""Capitals and Title Case: the model gets sentence case, the translation gets the input's case."""

from __future__ import annotations

import pytest

from model.text.casing import (
    capital_like_source,
    detect_style,
    prepare,
    restore_case,
    vocabulary_predicate,
)

# A stand-in for the model's vocabulary: the word forms that are one whole piece.
VOCABULARY = frozenset(
    "please do not touch the paintings where is train station I love and Paris London NASA TV "
    "us US to your dragon best hotels in Google".split()
)


def known(word: str) -> bool:
    return word in VOCABULARY


@pytest.mark.parametrize(
    ("sentence", "style"),
    [
        ("PLEASE DO NOT TOUCH THE PAINTINGS.", "upper"),
        ("WARNING!", "upper"),  # one long word in capitals
        ("NASA", "as_is"),  # one short word: could be an acronym
        ("THE TV IS ON 42.", "upper"),
        ("Where Is The Train Station?", "title"),
        ("The Best Hotels in London", "title"),  # small words may stay lower-case
        ("Please do not touch the paintings.", "as_is"),
        ("I love Paris and London.", "as_is"),  # names in an ordinary sentence
        ("Please DO NOT touch.", "as_is"),
        ("x", "as_is"),
        ("42 + 7 = 49", "as_is"),
    ],
)
def test_styles_are_detected(sentence: str, style: str) -> None:
    assert detect_style(sentence) == style


def test_capitals_are_translated_in_sentence_case_and_restored() -> None:
    prepared = prepare("PLEASE DO NOT TOUCH THE PAINTINGS IN PARIS, NOT ON TV.", known)
    assert prepared.style == "upper"
    # Names and acronyms the vocabulary knows keep their capitals; the rest is lowered.
    assert prepared.text == "Please do not touch the paintings in Paris, not on TV."
    assert restore_case("Xin đừng chạm vào những bức tranh ở Paris.", prepared.style) == (
        "XIN ĐỪNG CHẠM VÀO NHỮNG BỨC TRANH Ở PARIS."
    )


def test_without_a_vocabulary_every_word_but_the_first_is_lowered() -> None:
    prepared = prepare("I'M IN PARIS TODAY, AREN'T I?")
    assert prepared.text == "I'm in paris today, aren't I?"
    assert prepared.style == "upper"


def test_title_case_becomes_sentence_case_and_stays_so() -> None:
    prepared = prepare("Where Is The Train Station In London?", known)
    assert prepared == prepare("Where Is The Train Station In London?", known)
    assert prepared.text == "Where is the train station in London?"
    assert prepared.style == "title"
    assert restore_case("ga tàu ở đâu tại London?", "title") == "Ga tàu ở đâu tại London?"
    assert restore_case("«đây»", "title") == "«Đây»"


def test_shouted_words_in_an_ordinary_sentence_are_lowered_when_known() -> None:
    prepared = prepare("Please DO NOT touch the TV, it is NEW.", known)
    # DO and NOT are known in lower case; TV is known as it is; NEW is not known at all.
    assert prepared.text == "Please do not touch the TV, it is NEW."
    assert prepared.style == "as_is"
    assert restore_case("Đừng chạm vào TV.", "as_is") == "Đừng chạm vào TV."


def test_ordinary_sentences_are_left_alone() -> None:
    for sentence in ("I love Paris and London.", "Is it 3:30 yet?", "Google it, please."):
        prepared = prepare(sentence, known)
        assert prepared.text == sentence and prepared.style == "as_is"


def test_case_changes_never_change_lengths() -> None:
    # "İ".lower() is two characters: such a word is left as it is, so offsets stay valid.
    for sentence in ("İSTANBUL IS BIG AND OLD.", "STRASSE UND GRÜßE SIND SCHÖN."):
        prepared = prepare(sentence, known)
        assert len(prepared.text) == len(sentence)
        assert len(prepared.text.split()) == len(sentence.split())


def test_vocabulary_predicate_counts_pieces() -> None:
    pieces = {"Paris": 1, "paris": 2}
    predicate = vocabulary_predicate(lambda word: pieces.get(word, 3))
    assert predicate("Paris") and not predicate("paris") and not predicate("Lyon")


def test_urls_and_addresses_keep_their_case_both_ways() -> None:
    sentence = "SEE https://example.com/AbC OR MAIL Ann@Example.org NOW."
    prepared = prepare(sentence, known)
    assert prepared.style == "upper"
    assert "https://example.com/AbC" in prepared.text and "Ann@Example.org" in prepared.text
    restored = restore_case("xem https://example.com/AbC hoặc Ann@Example.org ngay.", "upper")
    assert restored == "XEM https://example.com/AbC HOẶC Ann@Example.org NGAY."
    # A URL says nothing about the sentence's case.
    assert detect_style("Read https://EXAMPLE.COM/DOCS/API first.") == "as_is"


@pytest.mark.parametrize(
    ("translation", "source", "expected"),
    [
        # The model began in lower case: the sentence began with a capital.
        ("mật khẩu của bạn là sai.", "Your password is wrong.", "Mật khẩu của bạn là sai."),
        ("“đăng nhập” thất bại.", "“Sign in” failed.", "“Đăng nhập” thất bại."),
        ("password is wrong.", "Mật khẩu sai.", "Password is wrong."),
        ("ở đây.", "I am here.", "Ở đây."),
        # A text that began in lower case: a fragment, whose translation does too.
        ("mật khẩu sai.", "your password is wrong.", "mật khẩu sai."),
        ("Máy tính", "computer", "máy tính"),
        ("Quả táo", "apples", "quả táo"),
        ("Computer", "máy tính", "computer"),
        ("“Lưu” thay đổi", "save changes", "“lưu” thay đổi"),
        # ... but for a name, an acronym, "I" and a word copied from the source.
        ("Hà Nội", "hanoi", "Hà Nội"),
        ("New York is big", "new york rất lớn", "New York is big"),
        ("I am here", "tôi ở đây", "I am here"),
        ("I'm here", "tôi ở đây", "I'm here"),
        ("I’ll call", "tôi sẽ gọi", "I’ll call"),
        ("TV hỏng", "tv broken", "TV hỏng"),
        ("Linh gọi", "linh called", "Linh gọi"),
        # A sentence that began with a digit, field or specifier.
        ("3 tệp đã bị xoá.", "3 files deleted.", "3 tệp đã bị xoá."),
        ("{name} đã đăng nhập.", "{name} signed in.", "{name} đã đăng nhập."),
        ("%s đã chia sẻ.", "%s shared it.", "%s đã chia sẻ."),
        # A first word copied from the source keeps its case.
        ("iPhone của tôi hỏng.", "My iPhone is broken.", "iPhone của tôi hỏng."),
        (
            "config.yaml không tồn tại.",
            "The config.yaml file is missing.",
            "config.yaml không tồn tại.",
        ),
        # Already a capital; nothing to do.
        ("Đừng chạm vào TV.", "Do not touch the TV.", "Đừng chạm vào TV."),
        ("", "Hello.", ""),
    ],
)
def test_a_translation_begins_in_the_case_its_sentence_began_in(
    translation: str, source: str, expected: str
) -> None:
    assert capital_like_source(translation, source) == expected
