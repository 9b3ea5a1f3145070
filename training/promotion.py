"""Scoring a model on the dev set exactly like ``mt-eval``, and the promotion rule."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from model.evaluation import evaluate_translator
from model.translator import Translator
from training.retrain_data import DevSet

METRIC = "tokenized BLEU (as mt-eval)"


@dataclass(frozen=True)
class Score:
    """One model's result on the dev set."""

    bleu: float  # tokenized BLEU, as mt-eval reports it
    chrf: float | None  # only when the references are natural text
    seconds: float

    def to_report(self) -> dict[str, Any]:
        return {"bleu": self.bleu, "chrf": self.chrf, "eval_seconds": self.seconds}


@dataclass(frozen=True)
class Evaluation:
    """How the models were scored: the same dev files and decoding for both."""

    source: str
    reference: str
    source_was_tokenized: bool
    beam: int
    metric: str
    sentences: int
    ref_tokenized: bool
    signature: str  # sacreBLEU's
    device: str

    def to_report(self) -> dict[str, Any]:
        return asdict(self)


def score_model(
    model_dir: Path, dev: DevSet, beam: int, device: str, max_batch_tokens: int
) -> tuple[Score, Evaluation]:
    """Translate the dev set with ``model_dir`` and score it exactly like ``mt-eval``."""
    translator = Translator.from_dir(model_dir, device=device, max_batch_tokens=max_batch_tokens)
    result = evaluate_translator(
        translator, dev.sources, dev.references, None, beam, target_lang=translator.languages[1]
    )
    evaluation = Evaluation(
        source=str(dev.source_path.resolve()),
        reference=str(dev.reference_path.resolve()),
        source_was_tokenized=dev.source_was_tokenized,
        beam=beam,
        metric=METRIC,
        sentences=result["sentences"],
        ref_tokenized=result["ref_tokenized"],
        signature=result["signatures"]["bleu_tokenized"],
        device=translator.model_info["device"],
    )
    return Score(result["bleu_tokenized"], result["chrf"], result["seconds"]), evaluation


def passes(current_bleu: float | None, candidate_bleu: float, max_bleu_drop: float) -> bool:
    """The promotion rule: the candidate may be at most ``max_bleu_drop`` BLEU worse (a
    negative value demands an improvement); anything beats having no model at all."""
    return current_bleu is None or candidate_bleu >= current_bleu - max_bleu_drop


@dataclass(frozen=True)
class Rule:
    """The promotion rule applied to one candidate."""

    max_bleu_drop: float
    bleu_change: float | None  # candidate - current, rounded; None without a current model
    passed: bool

    @classmethod
    def apply(cls, current_bleu: float | None, candidate_bleu: float, max_drop: float) -> Rule:
        change = None if current_bleu is None else round(candidate_bleu - current_bleu, 2)
        return cls(max_drop, change, passes(current_bleu, candidate_bleu, max_drop))

    def to_report(self) -> dict[str, Any]:
        return asdict(self)
