"""Language detection: Vietnamese by its letters, English by default, others by langdetect."""

from __future__ import annotations

import unicodedata

import pytest

from service.detect import LanguageDetector, language_name, prepare_text, text_words


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    return LanguageDetector()


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Where is the train station?", "en"),
        ("PLEASE DO NOT TOUCH THE PAINTINGS.", "en"),  # capitals read as Vietnamese before
        ("Milk", "en"),  # too short to tell: English, the language this server translates
        ("Shopping list:\n- 2kg apples\n- milk\n- bread", "en"),
        ("I had a crêpe at the café with my friends.", "en"),
        ("<p>Read the <a href='/docs'>documentation</a> first.</p>", "en"),
        ("Tôi yêu thành phố này.", "vi"),
        ("Cảm ơn", "vi"),
        ("Việt Nam", "vi"),
        # English naming a Vietnamese person or place is English; Vietnamese naming one is not
        ("My name is Nguyễn Văn An and I live in Hà Nội.", "en"),
        ("We visited Huế last year.", "en"),
        ("Anh ấy là Nguyễn Văn An.", "vi"),
        ("Chị Lan đi Huế với tôi.", "vi"),
        ("Đà Nẵng", "vi"),
        ("Hôm nay trời đẹp quá, chúng ta đi dạo nhé.", "vi"),
        ("Bonjour, je suis étudiant et j'habite à Lyon depuis deux ans.", "fr"),
        ("Der Hund schläft im Garten und die Katze spielt mit dem Ball.", "de"),
        ("Buenos días, ¿cómo estás? Me llamo Lucía y vivo en Sevilla.", "es"),
    ],
)
def test_languages_are_detected(detector: LanguageDetector, text: str, language: str) -> None:
    found = detector.detect(text, is_html=text.startswith("<"))
    assert found[0].language == language, found
    assert 0 < found[0].confidence <= 100
    assert len(found) <= 3


def test_text_without_letters_is_english_with_no_confidence(detector: LanguageDetector) -> None:
    for text in ("12345", "https://example.com/a?b=1", "!!! ???"):
        assert [d.as_json() for d in detector.detect(text)] == [
            {"language": "en", "confidence": 0.0}
        ]


def test_detection_is_deterministic(detector: LanguageDetector) -> None:
    text = "Ich habe heute keine Zeit, aber morgen komme ich gerne vorbei."
    assert detector.detect(text) == LanguageDetector().detect(text) == detector.detect(text)


def test_the_detector_reads_lower_case_text_without_markup_or_spans() -> None:
    prepared = prepare_text("<b>Call</b> ME at 3:30 or mail a@b.org", is_html=True)
    assert prepared.split() == ["call", "me", "at", "or", "mail"]


def test_language_names() -> None:
    assert language_name("vi") == "Vietnamese"
    assert language_name("fr") == "French"
    assert language_name("xx") == "xx"


@pytest.mark.parametrize(
    "text", ["Tôi yêu thành phố này.", "Cảm ơn", "Việt Nam", "Hôm nay trời đẹp quá."]
)
def test_decomposed_vietnamese_is_detected(detector: LanguageDetector, text: str) -> None:
    """macOS and Word often send NFD: base letters followed by combining marks."""
    decomposed = unicodedata.normalize("NFD", text)
    assert decomposed != text
    assert detector.detect(decomposed) == detector.detect(text)
    assert detector.detect(decomposed)[0].language == "vi"


def test_a_word_runs_through_combining_marks() -> None:
    # x and q with a tilde have no precomposed form: NFC leaves the marks in place.
    assert text_words("x\u0303yz q\u0303 it's") == ["x\u0303yz", "q\u0303", "it's"]
    assert text_words(prepare_text("Pho\u0302\u0301 co\u0309")) == ["phố", "cỏ"]
    assert text_words("a1b_c") == ["a", "b", "c"]


@pytest.mark.parametrize(
    "text",
    [
        "toi yeu thanh pho nay",
        "Xin chao, ban khoe khong?",
        "Cam on ban rat nhieu.",
        "Toi khong biet tai sao no lai nhu vay.",
    ],
)
def test_vietnamese_typed_without_marks_is_detected(detector: LanguageDetector, text: str) -> None:
    found = detector.detect(text)
    assert found[0].language == "vi", found


@pytest.mark.parametrize(
    "text",
    [
        "Do that",  # every word is also an unmarked Vietnamese syllable (đó, thật)
        "on to the",
        "Ban the bomb.",
        "The technologies do not exist to do that.",
        "Pay the VAT rate",
        "No, thanks",
    ],
)
def test_english_that_spells_like_unmarked_vietnamese_stays_english(
    detector: LanguageDetector, text: str
) -> None:
    assert detector.detect(text)[0].language == "en"
