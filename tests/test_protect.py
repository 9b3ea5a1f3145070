"""Protected spans: found, masked, carried through a model, and put back byte for byte."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from cli.evaluate import main as eval_main
from model.nn.seq2seq import Seq2Seq
from model.store.checkpoint import load_model, save_model
from model.text.clock import to_24_hour
from model.text.protect import MAX_SLOTS, PLACEHOLDERS, mask, protect_pair, restore
from model.text.spans import (
    find_amounts,
    find_code_tokens,
    find_markup,
    find_names,
    find_spans,
    find_symbols,
)
from model.text.tokenizer import Tokenizers, train_tokenizer
from model.translator import Translator
from tests.conftest import ENGLISH_WORDS, VIETNAMESE_WORDS, make_sentences, tiny_config
from tests.test_cli import write_lines

BUNDLED_MODEL = Path(__file__).resolve().parents[1] / "models" / "en-vi"

EVERYDAY = [
    "The meeting is at 3:30 pm.",
    "It costs $25.50 and shipping is $4.99.",
    "Visit https://example.com/docs?id=42&lang=en or write to support@example.com.",
    "I was born on March 15, 1990, in Hanoi.",
    "We sold 1,200,000 copies in 2024.",
    "Call +84 90 123 4567 before 12/05/2025.",
]


@pytest.mark.parametrize("text", EVERYDAY)
def test_mask_then_restore_gives_back_the_text(text: str) -> None:
    masked = mask(text)
    assert masked.originals, "every example has something to protect"
    assert not any(original in masked.text for original in masked.originals if len(original) > 2)
    assert restore(masked.text, masked.originals).text == text


def test_spans_are_whole_urls_addresses_and_numbers() -> None:
    spans = [span.text for span in find_spans(EVERYDAY[2])]
    assert spans == ["https://example.com/docs?id=42&lang=en", "support@example.com"]
    assert [s.text for s in find_spans("(see www.example.org/a_(b)), then 3.5.")] == [
        "www.example.org/a_(b)",
        "3.5",
    ]
    # glued to a letter: part of a name, not a number
    assert find_spans("MP3 players and H2O") == []


def test_one_text_gets_one_placeholder_in_order_of_appearance() -> None:
    masked = mask("From 9:00 to 17:00, then 9:00 again.")
    assert masked.originals == ("9:00", "17:00")
    assert (
        masked.text == f"From {PLACEHOLDERS[0]} to {PLACEHOLDERS[1]}, then {PLACEHOLDERS[0]} again."
    )


def test_user_text_cannot_fake_a_placeholder() -> None:
    masked = mask(f"odd {PLACEHOLDERS[3]} character and 42")
    assert masked.text == f"odd  character and {PLACEHOLDERS[0]}"
    assert masked.originals == ("42",)


def test_more_spans_than_slots_leave_the_rest_as_text() -> None:
    text = " ".join(str(n) for n in range(100, 100 + MAX_SLOTS + 3))
    masked = mask(text)
    assert len(masked.originals) == MAX_SLOTS
    assert masked.text.endswith(f"{100 + MAX_SLOTS} {100 + MAX_SLOTS + 1} {100 + MAX_SLOTS + 2}")
    assert restore(masked.text, masked.originals).text == text


def test_training_pairs_share_placeholders_only_for_spans_on_both_sides() -> None:
    source = "I paid 25.50 at 3:30 on 2024-05-12."
    target = "Tôi trả 25,50 lúc 3:30 ngày 2024-05-12."
    masked, masked_target = protect_pair(source, target)
    assert masked.originals == ("3:30", "2024-05-12")
    assert masked.text == f"I paid 25.50 at {PLACEHOLDERS[0]} on {PLACEHOLDERS[1]}."
    assert masked_target == f"Tôi trả 25,50 lúc {PLACEHOLDERS[0]} ngày {PLACEHOLDERS[1]}."
    # dev sets: the source is masked as at inference
    masked_all, _ = protect_pair(source, target, shared_only=False)
    assert masked_all.originals == ("25.50", "3:30", "2024-05-12")


def test_a_dropped_placeholder_is_appended_and_reported() -> None:
    restored = restore(f"Gặp lúc {PLACEHOLDERS[0]}.", ("3:30", "https://example.com"))
    assert restored.text == "Gặp lúc 3:30 https://example.com."
    assert restored.missing == ("https://example.com",)


def test_duplicated_and_invented_placeholders_are_reported() -> None:
    restored = restore(f"{PLACEHOLDERS[0]} và {PLACEHOLDERS[0]} {PLACEHOLDERS[5]}", ("7",))
    assert restored.text == "7 và 7"
    assert restored.duplicated == ("7",)
    assert restored.invented == 1


def test_a_span_is_kept_as_often_as_the_source_has_it() -> None:
    """A looping model repeats a placeholder; the user gets the span as often as they wrote it
    (the first copies), and the repeat is reported."""
    masked = mask("From 5 to 5, write to a@b.org")
    assert masked.originals == ("5", "a@b.org") and masked.occurrences == (2, 1)
    p0, p1 = PLACEHOLDERS[0], PLACEHOLDERS[1]
    looping = f"Từ {p0} đến {p0} {p0}, viết cho {p1} hoặc {p1} ."
    restored = restore(looping, masked.originals, masked.occurrences)
    assert restored.text == "Từ 5 đến 5, viết cho a@b.org hoặc."
    assert restored.duplicated == ("5", "a@b.org") and restored.missing == ()
    # without the counts (older callers) every copy comes back, as before
    assert restore(looping, masked.originals).text.count("a@b.org") == 2


@pytest.fixture(scope="module")
def protected_tokenizers() -> Tokenizers:
    return Tokenizers(
        source=train_tokenizer(
            make_sentences(ENGLISH_WORDS, 400, 1), 320, user_defined_symbols=PLACEHOLDERS
        ),
        target=train_tokenizer(
            make_sentences(VIETNAMESE_WORDS, 400, 2), 320, user_defined_symbols=PLACEHOLDERS
        ),
    )


@pytest.fixture(scope="module")
def protected_model_dir(
    tmp_path_factory: pytest.TempPathFactory, protected_tokenizers: Tokenizers
) -> Path:
    """An untrained tiny model whose vocabularies have the placeholder pieces."""
    tokenizers = protected_tokenizers
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("models") / "protected"
    save_model(directory, Seq2Seq(tiny_config(tokenizers)), tokenizers, metadata={})
    return directory


@pytest.fixture(scope="module")
def protected_translator(protected_model_dir: Path) -> Translator:
    return Translator(load_model(protected_model_dir), device="cpu")


def test_placeholders_are_single_pieces(protected_tokenizers: Tokenizers) -> None:
    for tokenizer in (protected_tokenizers.source, protected_tokenizers.target):
        ids = tokenizer.encode(f"at {PLACEHOLDERS[0]} and {PLACEHOLDERS[15]}")
        assert sum(1 for piece in tokenizer.pieces(ids) if piece in PLACEHOLDERS) == 2
        assert tokenizer.decode(ids) == f"at {PLACEHOLDERS[0]} and {PLACEHOLDERS[15]}"


def test_untrained_model_still_never_loses_a_span(
    protected_translator: Translator, caplog: pytest.LogCaptureFixture
) -> None:
    """Its output is noise and drops placeholders, yet every span comes through whole and
    the loss is logged (counts only: no user text in logs)."""
    assert protected_translator.protects_spans
    with caplog.at_level(logging.WARNING, logger="model.translator"):
        results = protected_translator.translate_sentences(
            EVERYDAY, protected_translator.options(beam=2)
        )
    for text, result in zip(EVERYDAY, results, strict=True):
        output = result.hypotheses[0].text
        timed = to_24_hour(text, "en")  # a time of day is carried on the 24-hour clock
        for span in mask(timed).originals:
            assert 1 <= output.count(span) <= timed.count(span), (span, output)
    assert "dropped by the model" in caplog.text
    assert "example.com" not in caplog.text


def test_models_without_placeholders_still_translate(
    tiny_model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="model.translator"):
        translator = Translator(load_model(tiny_model_dir), device="cpu")
    assert not translator.protects_spans
    assert "span protection is off" in caplog.text
    assert len(translator.translate(["see https://example.com at 3:30"], beam=2)) == 1


@pytest.mark.skipif(
    not (BUNDLED_MODEL / "config.json").is_file(), reason="no bundled model in this checkout"
)
def test_bundled_model_carries_everyday_spans_byte_identical() -> None:
    translator = Translator(load_model(BUNDLED_MODEL), device="cpu")
    if not translator.protects_spans:
        pytest.skip("the bundled model predates span protection")
    spans_of = {
        "The meeting is at 3:30 pm.": ["15:30"],  # on the 24-hour clock (model/text/clock.py)
        "The ticket costs $25.50.": ["$25.50"],
        "Visit https://example.com/docs?id=42 for details.": ["https://example.com/docs?id=42"],
        "Please write to support@example.com today.": ["support@example.com"],
        "I paid €45 and sales grew 12.5%.": ["€45", "12.5%"],
        "Call me at +84 912 345 678.": ["+84 912 345 678"],
    }
    outputs = translator.translate(list(spans_of))
    for output, spans in zip(outputs, spans_of.values(), strict=True):
        for span in spans:
            assert output.count(span) == 1, (span, output)


# ---------------------------------------------------------------------------------- names

# What a model's source vocabulary knows as one piece, for the name tests.
KNOWN = frozenset(
    [
        *"the a i my name is we to and search for open google maps ask about paris".split(),
        *"president city where train station visited in may mail at or see buy an mug".split(),
        *["it", "came", "Paris", "Google", "Obama", "President", "The", "I", "My"],
    ]
)


def known(word: str) -> bool:
    return word in KNOWN


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("My name is Nguyen Van An.", ["Nguyen Van An"]),  # "An" is a word, yet part of it
        ("Open Google Maps and search for Da Nang.", ["Da Nang"]),  # known names stay text
        ("Ask Tran Thi Mai about it.", ["Tran Thi Mai"]),  # the sentence's first word is not
        ("President Biden visited Ho Chi Minh City in May.", ["Biden", "Ho Chi Minh City"]),
        ("We met President Biden.", ["President Biden"]),  # a title inside a sentence stays
        ("I love Paris.", []),  # known, and a lone capital letter is no name
        ("Where Is The Train Station?", []),  # capitalised known words: a heading
        ("Buy an iPhone and a UNESCO mug.", ["iPhone", "UNESCO"]),
        ("Obama's speech.", []),  # "'s" is not part of the name, and Obama is known
        ("It is Nguyen's house.", ["Nguyen"]),
        ("Cancel", []),  # a lone Title-case first word is more often a word than a name
        ("Nguyen Van An came.", ["Nguyen Van An"]),
        # a capital in a later part of a hyphenated word, capitals outside ASCII, and words
        # glued to a digit or an underscore: the word boundaries of the name pattern
        ("They read well-Known Jean-Paul Sartre.", ["well-Known Jean-Paul Sartre"]),
        ("We flew to Đà Nẵng in may.", ["Đà Nẵng"]),
        ("see abc-1Xyz and x_Abc or éclair Zed", ["Xyz", "Abc", "Zed"]),
    ],
)
def test_names_are_runs_of_capitalised_words_with_an_unknown_word(
    text: str, names: list[str]
) -> None:
    found = find_names(text, known)
    assert [span.text for span in found] == names
    assert all(text[span.start : span.end] == span.text for span in found)


def test_names_are_masked_only_with_a_vocabulary_and_never_inside_a_url() -> None:
    text = "Mail Nguyen Van An at an.nguyen@Example.com or see https://Da-Nang.vn/Tours 2024."
    assert mask(text).originals == ("an.nguyen@Example.com", "https://Da-Nang.vn/Tours", "2024")
    masked = mask(text, known)
    assert masked.originals == (
        "Nguyen Van An",
        "an.nguyen@Example.com",
        "https://Da-Nang.vn/Tours",
        "2024",
    )
    assert restore(masked.text, masked.originals).text == text
    # training pairs never get name placeholders
    assert protect_pair("Nguyen Van An came.", "Nguyen Van An đã đến.")[0].originals == ()


def test_a_translator_carries_unknown_names_across_unless_told_not_to(
    protected_tokenizers: Tokenizers, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    directory = save_model(
        tmp_path / "names", Seq2Seq(tiny_config(protected_tokenizers)), protected_tokenizers, {}
    )
    sentence = "we see Nguyen Thi Xuyen today"
    protecting = Translator(load_model(directory), device="cpu")
    assert protecting.model_info["protects_identifiers"]
    assert "Nguyen Thi Xuyen" in protecting.translate([sentence], beam=2)[0]
    plain = Translator(load_model(directory), device="cpu", protect_identifiers=False)
    assert not plain.model_info["protects_identifiers"]
    assert plain.encode(sentence).originals == ()


# ------------------------------------------------------------------------- technical tokens


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("Follow @john_doe and #MachineLearning.", ["@john_doe", "#MachineLearning"]),
        ("Edit config.yaml in /usr/local/etc.", ["config.yaml", "/usr/local/etc"]),
        (
            "See src/model/search.py, ./run.sh or ~/notes.",
            ["src/model/search.py", "./run.sh", "~/notes"],
        ),
        ("Set user_id, press Ctrl+C, learn C++ or C#.", ["user_id", "Ctrl+C", "C++", "C#"]),
        ("Open report_2024.pdf and __init__.py.", ["report_2024.pdf", "__init__.py"]),
        (
            "Order ABC-123, code X7K9P2, COVID-19, MP3 in 3D.",
            ["ABC-123", "X7K9P2", "COVID-19", "MP3", "3D"],
        ),
        ("In the 1990s the 3rd 24-hour race had 5-star hotels.", []),  # words to translate
        ("Wi-Fi, e-mail, and/or km/h are words; so are U.S. and e.g. here.", []),
    ],
)
def test_technical_tokens_are_found_whole(text: str, tokens: list[str]) -> None:
    found = find_code_tokens(text)
    assert [span.text for span in found] == tokens
    assert all(text[span.start : span.end] == span.text for span in found)


def test_a_technical_token_takes_the_place_of_its_numbers_but_not_of_an_address() -> None:
    text = "Order ABC-123 from shop.example.com/orders or anna_b@mail.example.com at 9:30."
    masked = mask(text, known)
    assert masked.originals == (
        "ABC-123",
        "shop.example.com/orders",
        "anna_b@mail.example.com",
        "9:30",
    )
    assert restore(masked.text, masked.originals).text == text
    assert mask(text).originals == ("123", "anna_b@mail.example.com", "9:30")  # training's view


@pytest.mark.parametrize(
    ("text", "amounts"),
    [
        (
            "It costs $25.50, US$5 or € 45; 45€ and 100 ₫ too.",
            ["$25.50", "US$5", "€ 45", "45€", "100 ₫"],
        ),
        ("Sales grew 12.5% (0.5‰ of 1,000).", ["12.5%", "0.5‰"]),
        ("In 2019 $5 million went to issue #4521.", ["$5", "#4521"]),  # not "2019 $"
        (
            "Call +84 912 345 678, 0912 345 678 or +1 (555) 123-4567.",
            ["+84 912 345 678", "0912 345 678", "+1 (555) 123-4567"],
        ),
        ("He scored +5 points, 3 - 2, on 05.12.", []),  # too few digits for a phone number
        (
            "Vé 250.000 đồng, áo 150.000đ, phí 100 VND.",  # Vietnamese currency words
            ["250.000 đồng", "150.000đ", "100 VND"],
        ),
        ("Tôi có 3 đồng hồ và 2 đồng nghiệp.", []),  # clocks and colleagues, not money
        (
            "It weighs 2.5 kg, runs 60 km/h at 25°C (25 °F) and holds 4 GB; turn 90°.",
            ["2.5 kg", "60 km/h", "25°C", "25 °F", "4 GB", "90°"],
        ),
        ("Hộp nặng 2,5 kg, dài 30 cm.", ["2,5 kg", "30 cm"]),
        ("I have 3 gifts, 5 mins and 2 megs.", []),  # a word that starts like a unit
    ],
)
def test_amounts_and_phone_numbers_are_found_whole(text: str, amounts: list[str]) -> None:
    assert [span.text for span in find_amounts(text)] == amounts


def test_an_amount_rides_on_one_placeholder_at_inference_only() -> None:
    text = "The ticket costs $25.50, 12% less than in 2024."
    masked = mask(text, known)
    assert masked.originals == ("$25.50", "12%", "2024")
    assert masked.text.count("$") == masked.text.count("%") == 0
    assert restore(masked.text, masked.originals).text == text
    assert mask(text).originals == ("25.50", "12", "2024")  # training's view: bare numbers


@pytest.mark.parametrize(
    ("text", "symbols"),
    [
        ("Great job! 🎉", ["🎉"]),
        ("I ❤️ you 👨\u200d👩\u200d👧", ["❤️", "👨\u200d👩\u200d👧"]),  # with their joiners
        ("Copyright © 2024 Acme™, a → b, x ≤ 5, ★★★☆", ["©", "™", "→", "≤", "★★★☆"]),
        ("a + b < c ^ 2", []),  # ASCII symbols are the model's
        ("Giá: 50.000₫, “trích dẫn” – và…", []),  # currency, quotes, dashes, ellipsis
    ],
)
def test_symbols_and_emoji_are_found_whole(text: str, symbols: list[str]) -> None:
    assert [span.text for span in find_symbols(text)] == symbols


def test_symbols_ride_on_placeholders_at_inference_only() -> None:
    text = "It is 25°C today 😎 → go!"
    masked = mask(text, known)
    assert masked.originals == ("25°C", "😎", "→")  # the degree sign is the measurement's
    assert restore(masked.text, masked.originals).text == text
    assert mask(text).originals == ("25",)  # training's view


def test_markup_in_plain_text_is_carried_whole() -> None:
    text = 'See <b>this</b> page, <a href="https://x.com/a?id=2">here</a>, line<br/>two <!-- 3 -->'
    assert [span.text for span in find_markup(text)] == [
        "<b>",
        "</b>",
        '<a href="https://x.com/a?id=2">',
        "</a>",
        "<br/>",
        "<!-- 3 -->",
    ]
    masked = mask(text, known)
    assert masked.originals == tuple(span.text for span in find_markup(text))  # no URL, no 2
    assert restore(masked.text, masked.originals).text == text
    assert mask("5 < 6 and 7 > 3", known).originals == ("5", "6", "7", "3")  # no tag there
    assert mask(text).originals == masked.originals  # training data carries markup too


def test_eval_counts_placeholder_repairs_once_instead_of_a_log_line_each(
    protected_model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """mt-eval: the untrained model loses the URLs and numbers it is given; each such sentence
    is repaired (the span appended), counted in the JSON, and not logged."""
    sources = [f"see https://example.com/{n} and pay {n}.50 dollars ." for n in range(6)]
    source = write_lines(tmp_path / "tst.en", sources)
    reference = write_lines(tmp_path / "tst.vi", ["xem ."] * len(sources))
    model = ["--model", str(protected_model_dir), "--device", "cpu", "--beam", "2"]
    with caplog.at_level(logging.WARNING):
        assert eval_main([*model, "--src", str(source), "--ref", str(reference)]) == 0
    captured = capsys.readouterr()
    repairs = json.loads(captured.out)["placeholder_repairs"]
    assert set(repairs) == {"sentences", "dropped", "repeated", "invented"}
    assert 0 < repairs["sentences"] <= len(sources)
    assert repairs["dropped"] + repairs["repeated"] + repairs["invented"] >= repairs["sentences"]
    assert "placeholders:" not in captured.err
    assert not [r for r in caplog.records if "placeholders:" in r.getMessage()]
    # outside mt-eval the translator still logs each repair
    with caplog.at_level(logging.WARNING):
        Translator.from_dir(protected_model_dir, device="cpu").translate(sources[:1], beam=2)
    assert any("placeholders:" in r.getMessage() for r in caplog.records)
