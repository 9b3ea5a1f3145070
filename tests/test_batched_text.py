"""The host's text work done per batch gives what it gave sentence by sentence.

Encoding a batch (the pipeline's sentence steps over the list, one SentencePiece call) equals
encoding each sentence alone; assembling a batch (one SentencePiece decode, the reverse steps
over the list) equals assembling each sentence alone; the shortcuts of the span finders never
skip a match. Checked with the bundled model on a realistic set: everyday sentences with
numbers, addresses, capitals, names, layout and one sentence long enough to be cut in chunks,
and tst2013 when the data is there.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import sentencepiece as spm

from model.assembly import hypotheses_of
from model.search.options import SearchOptions
from model.text import casing, hints, name_words, spans
from model.text.tokenizer import SubwordTokenizer
from model.translator import Translator

BUNDLED_MODEL = Path(__file__).resolve().parents[1] / "models" / "en-vi"

EVERYDAY = [
    "When I was little, I thought my country was the best on the planet.",
    "PLEASE DO NOT TOUCH THE PAINTINGS.",
    "Where Is The Train Station?",
    "Please DO NOT touch the TV.",
    "Call me at 3:30 or mail a@b.org",
    "See https://example.com/docs?id=42 and config.yaml for details.",
    "It costs $25.50, or 12.5% more than last year's €45.",
    "Nguyen Van An moved to Da Nang in 2019",
    "The user_id field, the ABC-123 code and Ctrl+C.",
    "I love you",
    "\n",
    "- ",
    "",
    "!!!",
    "Science is a way of understanding the world around us, and it starts with questions, "
    "with doubts, with experiments that fail, with notes that nobody reads, with arguments "
    "late at night, with people who change their minds when the evidence says they should, "
    "and with the patience to do it all again the next day, and the day after that, "
    "for years, until something works. " * 3,
]

pytestmark = pytest.mark.skipif(
    not (BUNDLED_MODEL / "config.json").is_file(), reason="no bundled model in this checkout"
)


@pytest.fixture(scope="module")
def translator() -> Translator:
    return Translator.from_dir(BUNDLED_MODEL, device="cpu", quantize="int8", shortlist="auto")


def realistic(data_dir: Path | None) -> list[str]:
    sentences = list(EVERYDAY)
    if data_dir is not None:
        lines = (data_dir / "raw" / "tst2013.en").read_text(encoding="utf-8").splitlines()
        sentences += lines[:120]
    return sentences


@pytest.fixture(params=["everyday", "tst2013"])
def sentences(request: pytest.FixtureRequest) -> list[str]:
    if request.param == "everyday":
        return realistic(None)
    return realistic(request.getfixturevalue("data_dir"))


def test_a_batch_is_encoded_as_each_sentence_alone(
    translator: Translator, sentences: list[str]
) -> None:
    together = translator.encode_batch(sentences)
    assert together == [translator.encode(sentence) for sentence in sentences]
    assert any(sentence.rows > 1 for sentence in together)  # the long one is cut in chunks
    assert any(sentence.originals for sentence in together)  # spans were masked


@pytest.mark.parametrize("beam", [1, 3])
def test_a_batch_is_assembled_as_each_sentence_alone(
    translator: Translator, sentences: list[str], beam: int
) -> None:
    """One search over the batch, then its results assembled all at once and one sentence at
    a time: the same translations, tokens, scores and attention."""
    options = SearchOptions(beam=beam, n_best=min(beam, 2), block_loops=4, attention=True)
    encoded = translator.encode_batch(sentences)
    rows = [chunk for sentence in encoded for chunk in sentence.chunks]
    result = translator.runner.search(rows, options)
    attention = result.attention or []
    found, position = [], 0
    for sentence in encoded:
        chunks = range(position, position + sentence.rows)
        found.append(
            [hypotheses_of(result.tokens[r], result.scores[r], attention[r]) for r in chunks]
        )
        position += sentence.rows
    assembler = translator._assembler
    together = assembler.assemble_batch(encoded, found, options)
    alone = [
        assembler.assemble_batch([sentence], [own], options)[0]
        for sentence, own in zip(encoded, found, strict=True)
    ]
    assert together == alone
    assert together == translator.search(encoded, options)  # the Translator's own way


def test_pieces_and_batch_decoding_are_sentencepieces_own() -> None:
    tokenizer = SubwordTokenizer.load(BUNDLED_MODEL / "target.spm")
    processor = spm.SentencePieceProcessor(model_file=str(BUNDLED_MODEL / "target.spm"))
    every_id = list(range(tokenizer.vocab_size))
    assert tokenizer.pieces(every_id) == [processor.id_to_piece(i) for i in every_id]
    rng = random.Random(3)
    lists = [
        [rng.randrange(tokenizer.vocab_size) for _ in range(rng.randrange(30))] for _ in range(200)
    ]
    # without the broken characters that random byte pieces decode to
    expected = [processor.decode([i for i in ids if i > 3]).replace("\ufffd", "") for ids in lists]
    assert any(
        "\ufffd" in processor.decode([i for i in ids if i > 3]) for ids in lists
    )  # the case is met
    assert tokenizer.decode_batch(lists, threads=2) == expected
    assert tokenizer.decode_batch(lists, threads=1) == expected
    assert [tokenizer.decode(ids) for ids in lists] == expected
    source = SubwordTokenizer.load(BUNDLED_MODEL / "source.spm")
    texts = [text for text in EVERYDAY if text] * 20
    one_by_one = [source.encode(text) for text in texts]
    assert source.encode_batch(texts, threads=2) == one_by_one
    assert source.encode_batch(texts, threads=1) == one_by_one


def fuzz_texts(count: int, seed: int) -> list[str]:
    """Short strings over the characters the span patterns care about."""
    alphabet = [*"aZ9_-./\\@#+:~ \t\u00a0$€%<>!?,'\"()ǅé١", "www.", "://", "http", ".com"]
    rng = random.Random(seed)
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30))) for _ in range(count)]


@pytest.fixture(params=["everyday", "fuzz", "train"])
def texts(request: pytest.FixtureRequest) -> list[str]:
    if request.param == "everyday":
        return EVERYDAY
    if request.param == "fuzz":
        return fuzz_texts(20_000, seed=11)
    lines = (request.getfixturevalue("data_dir") / "train.en").read_text(encoding="utf-8")
    return lines.splitlines()[:20_000]


def test_the_span_shortcuts_never_skip_a_match(texts: list[str]) -> None:
    """A text the shortcuts pass over has no match of the pattern they stand for, and the
    word-by-word scan for technical tokens finds every match of the whole-text scan."""
    for text in texts:
        if spans._SPAN.search(text):
            assert spans._may_have_spans(text), text
        if spans._AMOUNT.search(text):
            assert spans._AMOUNT_HINT.search(text), text
        if spans._MARKUP.search(text):
            assert "<" in text, text
        whole = [match.span() for match in spans._CODE_TOKEN.finditer(text)]
        by_word = [
            match.span()
            for word in spans._NON_SPACE.finditer(text)
            if spans._may_have_code(word.group())
            for match in spans._CODE_TOKEN.finditer(text, word.start(), word.end())
        ]
        assert by_word == whole, text


def test_a_name_like_word_has_a_capital_and_two_letters(texts: list[str]) -> None:
    for text in texts:
        for word in name_words.NAME_WORD.findall(text):
            has_capital = len(word) > 1 and any(c.isupper() for c in word)
            assert name_words.name_like(word) == has_capital, word


def test_the_character_class_shortcut_answers_as_the_regex(texts: list[str]) -> None:
    """An ASCII text is asked without the regex: the answers are the regex's."""
    classes = [hints.CharacterClass(pattern) for pattern in (r"[\d@]", r"[@#\\/_+\d]", r"\d")]
    for text in texts:
        for character_class in classes:
            assert character_class.search(text) == bool(character_class.pattern.search(text))
        dot_word = hints.matches_at(text, ".", spans._DOT_WORD)
        assert dot_word == bool(spans._DOT_WORD.search(text)), text


def test_name_words_of_ascii_text_are_the_patterns_words(texts: list[str]) -> None:
    """The words around an ASCII text's capitals are the name-like words the pattern finds."""
    ascii_texts = [text for text in texts if text.isascii()]
    ascii_texts += [text.encode("ascii", "replace").decode() for text in texts]
    assert len(ascii_texts) > len(texts) // 2
    for text in ascii_texts:
        expected = [
            (*match.span(1), match.group(1))
            for match in name_words.NAME_WORD.finditer(text)
            if match.group(1) is not None and name_words.name_like(match.group(1))
        ]
        assert name_words.name_words(text) == expected, text


def test_a_text_passed_over_for_capitals_has_no_word_in_capitals(texts: list[str]) -> None:
    for text in [*texts, *(text.upper() for text in texts[:2000])]:
        plain = casing._plain(text)
        if not casing._may_have_upper_words(plain):
            assert casing._upper_words(casing._WORD.findall(plain)) == [], text
