"""The everyday evaluation set (``eval/everyday``) is well formed and stays our own.

Checks the files themselves, not a model: the English and Vietnamese files align line for
line, are NFC, have no empty or repeated lines, every domain has enough sentences, every
placeholder, number, URL and e-mail address of an English line is carried byte for byte into
its reference, and no line is a sentence of the IWSLT'15 training or test data.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.parallel_text import (
    EMAIL,
    NUMBER,
    PLACEHOLDER,
    URL,
    comparable,
    has_vietnamese_letters,
    is_clean_line,
    kept_spans,
    read_lines,
)

EVERYDAY = Path(__file__).resolve().parents[1] / "eval" / "everyday"
DOMAINS = {"chat", "travel", "shopping", "health", "email", "household", "software"}
MIN_PER_DOMAIN = 20
MIN_SENTENCES = 160
MIN_WORDS, MAX_WORDS = 2, 30
IWSLT_ENGLISH = ("train.en", "tst2012.en", "tst2013.en")


@dataclass(frozen=True)
class EverydaySet:
    english: list[str]
    vietnamese: list[str]
    domain_rows: list[list[str]]


@pytest.fixture(scope="module")
def everyday() -> EverydaySet:
    rows = [line.split("\t") for line in read_lines(EVERYDAY / "domains.tsv")]
    assert rows[0] == ["line", "id", "domain"]
    english, vietnamese = (read_lines(EVERYDAY / name) for name in ("everyday.en", "everyday.vi"))
    return EverydaySet(english, vietnamese, rows[1:])


def test_files_align_one_clean_sentence_per_line(everyday: EverydaySet) -> None:
    assert len(everyday.english) == len(everyday.vietnamese) >= MIN_SENTENCES
    for side in (everyday.english, everyday.vietnamese):
        assert all(is_clean_line(line) for line in side), [
            line for line in side if not is_clean_line(line)
        ]
        repeated = [line for line, count in Counter(side).items() if count > 1]
        assert not repeated


def test_sentences_are_between_two_and_thirty_words(everyday: EverydaySet) -> None:
    lengths = [len(line.split()) for line in everyday.english]
    assert min(lengths) >= MIN_WORDS and max(lengths) <= MAX_WORDS


def test_references_are_vietnamese(everyday: EverydaySet) -> None:
    """A reference left in English (a pasting slip) has no Vietnamese letters; a few short UI
    strings may lack them, most lines do not."""
    without = [line for line in everyday.vietnamese if not has_vietnamese_letters(line)]
    assert len(without) <= len(everyday.vietnamese) // 20, without


def test_every_line_has_a_domain_and_every_domain_enough_lines(everyday: EverydaySet) -> None:
    rows = everyday.domain_rows
    assert [int(row[0]) for row in rows] == list(range(1, len(everyday.english) + 1))
    assert all(len(row) == 3 for row in rows)
    ids = [row[1] for row in rows]
    assert len(set(ids)) == len(ids)
    assert all(row[1].startswith(row[2] + "-") for row in rows)
    counts = Counter(row[2] for row in rows)
    assert set(counts) == DOMAINS
    assert min(counts.values()) >= MIN_PER_DOMAIN, counts


def test_placeholders_numbers_and_addresses_are_kept_byte_for_byte(
    everyday: EverydaySet,
) -> None:
    missing = [
        (english, span)
        for english, vietnamese in zip(everyday.english, everyday.vietnamese, strict=True)
        for span in kept_spans(english)
        if span not in vietnamese
    ]
    assert not missing
    # The check has something to check: every kind of span occurs in the set.
    spans = [span for line in everyday.english for span in kept_spans(line)]
    for pattern in (URL, EMAIL, PLACEHOLDER, NUMBER):
        assert any(pattern.fullmatch(span) for span in spans), pattern.pattern


def test_span_reading_takes_a_url_whole() -> None:
    line = 'Write to help@example.com or see https://example.com/v2.1, "{name}" has %d.'
    assert kept_spans(line) == [
        "https://example.com/v2.1",
        "help@example.com",
        "{name}",
        "%d",
    ]
    assert kept_spans("Call 115 at 9:45 pm, $27.80 in total.") == ["115", "9:45", "27.80"]


def test_a_tokenized_escaped_line_compares_equal_to_its_natural_form() -> None:
    assert comparable("I don &apos;t know , &quot; she said . &quot;") == comparable(
        'I don\'t know, "she said."'
    )
    assert comparable("Hello, how are you?") != comparable("Hello, who are you?")


def test_no_line_is_taken_from_the_iwslt_data(everyday: EverydaySet, data_dir: Path) -> None:
    ours = {comparable(line): line for line in everyday.english}
    found = []
    for name in IWSLT_ENGLISH:
        with (data_dir / name).open(encoding="utf-8") as handle:
            found += [ours[key] for key in map(comparable, handle) if key in ours]
    assert not found
