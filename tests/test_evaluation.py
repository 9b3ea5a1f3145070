"""BLEU/chrF helpers: the paper-comparable tokenized BLEU checked against hand counts."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from model.evaluation import (
    chrf,
    detokenized_bleu,
    looks_moses_tokenized,
    moses_detokenize,
    moses_tokenize,
    tokenized_bleu,
    tokenized_bleu_score,
)

# Natural-text hypotheses (what the model outputs) and Stanford-style references.
HYPOTHESES = ['Tôi nói "xin chào" với mẹ tôi.', "Tôi rất yêu mèo."]
REFERENCES_TOKENIZED = [
    "Tôi nói &quot; xin chào &quot; với bố tôi .",
    "Tôi rất yêu mèo nhà tôi .",
]


def test_hypotheses_are_tokenized_and_escaped_like_the_references() -> None:
    assert moses_tokenize(HYPOTHESES) == [
        "Tôi nói &quot; xin chào &quot; với mẹ tôi .",
        "Tôi rất yêu mèo .",
    ]


def test_tokenized_bleu_single_sentence_by_hand() -> None:
    """Hypothesis, once tokenized: ``Tôi nói &quot; xin chào &quot; với mẹ tôi .`` (10 tokens);
    reference ``Tôi nói &quot; xin chào &quot; với bố tôi .`` (10 tokens). Only ``mẹ``/``bố``
    differ (``Tôi`` and ``tôi`` are different tokens: BLEU is case-sensitive):

    * 1-grams: 9 of 10 match (all but ``mẹ``)
    * 2-grams: 7 of 9 (all but ``với mẹ``, ``mẹ tôi``)
    * 3-grams: 5 of 8 (the five that end before ``mẹ``)
    * 4-grams: 4 of 7 (likewise)

    Equal lengths, so no brevity penalty:
    BLEU = 100 * (9/10 * 7/9 * 5/8 * 4/7) ** (1/4) = 100 * (1/4) ** (1/4) = 100 / sqrt(2).
    Without Moses tokenization the hypothesis would share almost no 3- or 4-grams.
    """
    score = tokenized_bleu(HYPOTHESES[:1], REFERENCES_TOKENIZED[:1])
    assert score == pytest.approx(100 / math.sqrt(2), abs=1e-6)


def test_tokenized_bleu_corpus_with_brevity_penalty_by_hand() -> None:
    """Second pair: hypothesis ``Tôi rất yêu mèo .`` (5 tokens) against
    ``Tôi rất yêu mèo nhà tôi .`` (7 tokens): 1-grams 5/5, 2-grams 3/4 (not ``mèo .``),
    3-grams 2/3, 4-grams 1/2.

    Corpus BLEU adds the counts over both sentences before dividing:
    p1 = (9+5)/(10+5), p2 = (7+3)/(9+4), p3 = (5+2)/(8+3), p4 = (4+1)/(7+2);
    hypothesis length 15 < reference length 17, so BP = exp(1 - 17/15).
    """
    precisions = [14 / 15, 10 / 13, 7 / 11, 5 / 9]
    brevity_penalty = math.exp(1 - 17 / 15)
    expected = 100 * brevity_penalty * math.prod(precisions) ** 0.25
    result = tokenized_bleu_score(HYPOTHESES, REFERENCES_TOKENIZED)
    assert result.score == pytest.approx(expected, abs=1e-6)
    assert "tok:none" in result.signature
    assert "BP = " in result.details


def test_detokenized_bleu_and_chrf_use_standard_signatures() -> None:
    references = ['Tôi nói "xin chào" với bố tôi.', "Tôi rất yêu mèo nhà tôi."]
    bleu = detokenized_bleu(references, references)
    assert bleu.score == pytest.approx(100.0)
    assert "tok:13a" in bleu.signature
    chrf_score = chrf(HYPOTHESES, references)
    assert 0.0 < chrf_score.score < 100.0
    assert "nc:6" in chrf_score.signature


def test_misaligned_files_are_an_error() -> None:
    with pytest.raises(ValueError, match="aligned"):
        tokenized_bleu(HYPOTHESES, REFERENCES_TOKENIZED[:1])


def test_moses_detokenize_unescapes_stanford_source() -> None:
    line = "I grew up singing a song called &quot; Nothing To Envy . &quot;"
    assert moses_detokenize([line]) == ['I grew up singing a song called "Nothing To Envy."']
    assert moses_detokenize(["It &apos;s 5 &amp; 6 ."]) == ["It's 5 & 6."]


def test_looks_moses_tokenized() -> None:
    assert looks_moses_tokenized(["And I was very proud .", "Hello , world"])
    assert looks_moses_tokenized(["He said &quot; no &quot;"])
    assert not looks_moses_tokenized(["And I was very proud.", "Hello, world!", ""])
    assert not looks_moses_tokenized([])


@pytest.mark.data
def test_moses_tokenizer_reproduces_the_stanford_references(data_dir: Path) -> None:
    raw = (data_dir / "raw" / "tst2013.vi").read_text(encoding="utf-8").splitlines()
    tokenized = (data_dir / "tst2013.vi").read_text(encoding="utf-8").splitlines()
    assert tokenized_bleu(raw, tokenized) > 99.9
    assert looks_moses_tokenized(tokenized)
    assert not looks_moses_tokenized(raw)
