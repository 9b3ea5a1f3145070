"""BLEU and chrF the way the IWSLT'15 En–Vi literature computes them, plus Moses helpers.

Three numbers, each for a different comparison (docs/evaluation.md explains them):

* :func:`tokenized_bleu` — **the number papers report** on tst2013 (Luong & Manning 23.3,
  TensorFlow NMT 26.1, ...): hypotheses are Moses-tokenized and XML-escaped exactly like the
  Stanford references (``tst2013.vi``), then scored with sacreBLEU ``tokenize="none"``, which
  is what ``multi-bleu.perl`` computes.
* :func:`detokenized_bleu` — sacreBLEU's standard (``13a``) BLEU of the natural-text output
  against the untokenized reference (``raw/tst2013.vi``); comparable across tokenizations.
* :func:`chrf` — character n-gram F-score against the untokenized reference.

The Moses tokenizer reproduces the Stanford references almost exactly: tokenizing
``raw/tst2013.vi`` scores 99.95 tokenized BLEU against ``tst2013.vi``. Hypotheses are tokenized
with the rules of the language they are written in (``target_lang``: ``en`` for a
Vietnamese→English model, scored against ``tst2013.en``).
"""

from __future__ import annotations

import itertools
import re
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from sacrebleu.metrics import BLEU, CHRF
from sacremoses import MosesDetokenizer, MosesTokenizer
from tqdm import tqdm

# Lines that look Moses-tokenized: punctuation split off as its own token, or Moses escapes.
_TOKENIZED_PUNCTUATION = re.compile(r"(^|\s)[.,!?;:](\s|$)")
_MOSES_ESCAPE = re.compile(r"&(apos|quot|amp|lt|gt|#124|#91|#93);")


@lru_cache(maxsize=8)
def _moses_tokenizer(lang: str) -> MosesTokenizer:
    return MosesTokenizer(lang=lang)


@lru_cache(maxsize=8)
def moses_detokenizer(lang: str) -> MosesDetokenizer:
    """The shared Moses detokenizer for ``lang`` (building one compiles many patterns)."""
    return MosesDetokenizer(lang=lang)


def moses_tokenize(texts: Iterable[str], lang: str = "vi") -> list[str]:
    """Moses-tokenize and XML-escape, as the Stanford IWSLT'15 files are
    (no aggressive dash splitting: ``Il-Sung`` stays one token there)."""
    tokenizer = _moses_tokenizer(lang)
    return [tokenizer.tokenize(text, escape=True, return_str=True) for text in texts]


def moses_detokenize(texts: Iterable[str], lang: str = "en") -> list[str]:
    """Undo Moses tokenization and XML escapes: ``&quot; Hi . &quot;`` -> ``"Hi."``."""
    detokenizer = moses_detokenizer(lang)
    return [detokenizer.detokenize(text.split(), unescape=True) for text in texts]


def looks_moses_tokenized(lines: Iterable[str], threshold: float = 0.3) -> bool:
    """Whether most lines carry Moses traces (split-off punctuation or ``&quot;``-style
    escapes). Natural text almost never puts a space before ``.`` or ``,``, while nearly every
    Moses-tokenized sentence ends in `` .`` or contains `` , ``."""
    total = marked = 0
    for line in lines:
        if not line.strip():
            continue
        total += 1
        if _TOKENIZED_PUNCTUATION.search(line) or _MOSES_ESCAPE.search(line):
            marked += 1
    return total > 0 and marked / total >= threshold


@dataclass(frozen=True)
class MetricScore:
    """One corpus-level score, its sacreBLEU signature (for reproducibility) and, for BLEU,
    sacreBLEU's verbose line (n-gram precisions, brevity penalty)."""

    score: float
    signature: str
    details: str


def _check_lengths(hypotheses: list[str], references: list[str]) -> None:
    if len(hypotheses) != len(references):
        raise ValueError(
            f"{len(hypotheses)} hypotheses but {len(references)} references: "
            "the files must be aligned line by line"
        )


def tokenized_bleu_score(
    hypotheses: list[str], references_tokenized: list[str], target_lang: str = "vi"
) -> MetricScore:
    """:func:`tokenized_bleu` with its signature and details."""
    _check_lengths(hypotheses, references_tokenized)
    metric = BLEU(tokenize="none", force=True)
    tokenized = moses_tokenize(hypotheses, target_lang)
    result = metric.corpus_score(tokenized, [references_tokenized])
    return MetricScore(result.score, str(metric.get_signature()), str(result))


def tokenized_bleu(
    hypotheses: list[str], references_tokenized: list[str], target_lang: str = "vi"
) -> float:
    """Paper-comparable BLEU: natural-text ``hypotheses`` (written in ``target_lang``) are
    Moses-tokenized and escaped like the Stanford references, then scored against
    ``references_tokenized`` (e.g. the lines of ``tst2013.vi``) with no further tokenization
    (``multi-bleu.perl`` semantics)."""
    return tokenized_bleu_score(hypotheses, references_tokenized, target_lang).score


def detokenized_bleu(hypotheses: list[str], references_raw: list[str]) -> MetricScore:
    """Standard sacreBLEU (``13a`` tokenization) against untokenized references."""
    _check_lengths(hypotheses, references_raw)
    metric = BLEU()
    result = metric.corpus_score(hypotheses, [references_raw])
    return MetricScore(result.score, str(metric.get_signature()), str(result))


def chrf(hypotheses: list[str], references_raw: list[str]) -> MetricScore:
    """sacreBLEU chrF (character 6-grams, beta 2) against untokenized references."""
    _check_lengths(hypotheses, references_raw)
    metric = CHRF()
    result = metric.corpus_score(hypotheses, [references_raw])
    return MetricScore(result.score, str(metric.get_signature()), str(result))


_WORD = re.compile(r"[^\W\d_]+")


def repeated_words(lines: Iterable[str]) -> int:
    """Words (letters only, case-insensitive) equal to the word right before them: the
    stutter of a decoder that loops (``tàu tàu``). Vietnamese has real reduplications
    (``từ từ``), so compare with the reference's own count."""
    total = 0
    for line in lines:
        words = [word.lower() for word in _WORD.findall(line)]
        total += sum(1 for a, b in itertools.pairwise(words) if a == b)
    return total


class EvaluationError(ValueError):
    """Hypothesis sources and references do not line up."""


class TextTranslator(Protocol):
    """What :func:`evaluate_translator` needs (``model.translator.Translator`` fits)."""

    def translate(self, texts: list[str], beam: int = 5) -> list[str]: ...


def evaluate_translator(
    translator: TextTranslator,
    sources: list[str],
    references: list[str],
    raw_references: list[str] | None,
    beam: int,
    show_progress: bool = False,
    target_lang: str = "vi",
) -> dict[str, Any]:
    """Translate natural-text ``sources`` and score them; returns the mt-eval report fields.

    ``references`` may be Moses-tokenized (Stanford style; scored as is) or natural text
    (Moses-tokenized here for the tokenized BLEU, and used as the raw reference when
    ``raw_references`` is None); ``target_lang``: their language, whose Moses rules tokenize
    the hypotheses (and natural-text references) for the tokenized BLEU.
    """
    if len(sources) != len(references):
        raise EvaluationError(f"{len(sources)} source lines but {len(references)} reference lines")
    references_are_tokenized = looks_moses_tokenized(references)
    if raw_references is None and not references_are_tokenized:
        raw_references = references
    tokenized_references = (
        references if references_are_tokenized else moses_tokenize(references, target_lang)
    )

    started = time.perf_counter()
    hypotheses: list[str] = []
    with tqdm(total=len(sources), unit="sent", disable=not show_progress, file=sys.stderr) as bar:
        for start in range(0, len(sources), 256):
            block = sources[start : start + 256]
            hypotheses.extend(translator.translate(block, beam=beam))
            bar.update(len(block))
    seconds = time.perf_counter() - started

    tokenized = tokenized_bleu_score(hypotheses, tokenized_references, target_lang)
    report: dict[str, Any] = {
        "sentences": len(sources),
        "ref_tokenized": references_are_tokenized,
        "bleu_tokenized": round(tokenized.score, 2),
        "bleu_detokenized": None,
        "chrf": None,
        "seconds": round(seconds, 2),
        "sentences_per_second": round(len(sources) / seconds, 2) if seconds > 0 else None,
        "signatures": {"bleu_tokenized": tokenized.signature},
        "details": {"bleu_tokenized": tokenized.details},
        "hypotheses": hypotheses,
    }
    if raw_references is not None:
        if len(raw_references) != len(sources):
            raise EvaluationError(
                f"{len(sources)} source lines but {len(raw_references)} raw reference lines"
            )
        for name, metric in (("bleu_detokenized", detokenized_bleu), ("chrf", chrf)):
            result = metric(hypotheses, raw_references)
            report[name] = round(result.score, 2)
            report["signatures"][name] = result.signature
            report["details"][name] = result.details
    return report
