"""The hand-written everyday training corpora (``corpora/everyday``,
``corpora/everyday-vocabulary`` and ``corpora/everyday-usage``) are well formed, carry their
spans, and never hold a sentence of a set that models are chosen or scored on.

Checks the files, not a model: ``train`` and ``dev`` align line for line in both languages
and are clean NFC text; no English sentence repeats, within or across the splits and the
corpora; every URL, e-mail address, placeholder and number of an English line is in its
Vietnamese line; and no line is a sentence of the everyday evaluation set (``eval/everyday``)
or of the IWSLT'15 dev and test sets, in either language.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.parallel_text import (
    comparable,
    has_vietnamese_letters,
    is_clean_line,
    kept_spans,
    read_lines,
)

ROOT = Path(__file__).resolve().parents[1]
CORPORA = tuple(
    ROOT / "corpora" / name for name in ("everyday", "everyday-vocabulary", "everyday-usage")
)
EVALUATION = ROOT / "eval" / "everyday"
SPLITS = {"train": 2000, "dev": 100}  # the fewest pairs each split must hold
IWSLT_SETS = ("tst2012", "tst2013")


def read_corpus(corpus: Path) -> dict[str, list[tuple[str, str]]]:
    """Each split's (English, Vietnamese) pairs."""
    split_pairs = {}
    for split in SPLITS:
        english, vietnamese = (read_lines(corpus / f"{split}.{lang}") for lang in ("en", "vi"))
        assert len(english) == len(vietnamese), split
        split_pairs[split] = list(zip(english, vietnamese, strict=True))
    return split_pairs


@pytest.fixture(scope="module", params=CORPORA, ids=lambda corpus: corpus.name)
def pairs(request: pytest.FixtureRequest) -> dict[str, list[tuple[str, str]]]:
    """One corpus's pairs, split by split."""
    return read_corpus(request.param)


def test_every_split_is_clean_aligned_text(pairs: dict[str, list[tuple[str, str]]]) -> None:
    for split, fewest in SPLITS.items():
        assert len(pairs[split]) >= fewest, split
        unclean = [pair for pair in pairs[split] if not all(map(is_clean_line, pair))]
        assert not unclean


def test_no_english_sentence_repeats_in_any_corpus() -> None:
    counts = Counter(
        comparable(english)
        for corpus in CORPORA
        for split in read_corpus(corpus).values()
        for english, _ in split
    )
    assert [sentence for sentence, count in counts.items() if count > 1] == []


def test_the_vietnamese_side_is_vietnamese(pairs: dict[str, list[tuple[str, str]]]) -> None:
    """A line left in English has no Vietnamese letters; a few short lines (names, `OK`)
    may lack them."""
    vietnamese = [line for split in pairs.values() for _, line in split]
    without = [line for line in vietnamese if not has_vietnamese_letters(line)]
    assert len(without) <= len(vietnamese) // 50, without


def test_spans_are_carried_byte_for_byte(pairs: dict[str, list[tuple[str, str]]]) -> None:
    missing = [
        (english, span)
        for split in pairs.values()
        for english, vietnamese in split
        for span in kept_spans(english)
        if span not in vietnamese
    ]
    assert not missing
    assert sum(bool(kept_spans(english)) for english, _ in pairs["train"]) >= 100


def sentences_found_in(
    pairs: dict[str, list[tuple[str, str]]], held_out: dict[str, list[Path]]
) -> list[str]:
    """The corpus's sentences, in either language, that compare equal to a line of one of
    ``held_out``'s files for that language (``{"en": [...], "vi": [...]}``)."""
    found = []
    for side, lang in enumerate(("en", "vi")):
        lines = {comparable(line) for path in held_out[lang] for line in read_lines(path)}
        lines.discard("")
        corpus = (pair[side] for split in pairs.values() for pair in split)
        found += [sentence for sentence in corpus if comparable(sentence) in lines]
    return found


def test_no_sentence_of_the_everyday_evaluation_set(
    pairs: dict[str, list[tuple[str, str]]],
) -> None:
    files = {lang: [EVALUATION / f"everyday.{lang}"] for lang in ("en", "vi")}
    assert sentences_found_in(pairs, files) == []


def test_no_sentence_of_the_iwslt_dev_and_test_sets(
    pairs: dict[str, list[tuple[str, str]]], data_dir: Path
) -> None:
    files = {lang: [data_dir / f"{name}.{lang}" for name in IWSLT_SETS] for lang in ("en", "vi")}
    assert sentences_found_in(pairs, files) == []
