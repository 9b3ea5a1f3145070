"""What one ``mt-retrain`` run did: a typed record, its JSON form and its printed summary.

The JSON report (``ROOT/reports/<version>.json``) keeps the keys docs/retraining.md lists; a
key appears once its step has happened, so a report of a failed run shows how far it got.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from model.store.durable import write_text
from training.model_store import utc_now
from training.promotion import Evaluation, Rule, Score
from training.reload_client import ReloadOutcome


def _timestamp() -> str:
    return utc_now().isoformat(timespec="seconds")


@dataclass
class ScoredModel:
    """The current model or the candidate: where it is and, once scored, its score."""

    dir: str | None
    version: str | None = None  # reported for the current model only
    score: Score | None = None


@dataclass(frozen=True)
class DataSummary:
    new: str
    new_pairs: int
    original: str | None
    original_pairs: int


@dataclass(frozen=True)
class TrainingOutcome:
    steps: int
    stopped_because: str
    trainer_best_bleu: float | None
    seconds: float


@dataclass
class TrainingSummary:
    config: str
    overrides: list[str]
    outcome: TrainingOutcome | None = None  # set once the trainer has finished

    def to_report(self) -> dict[str, Any]:
        outcome = asdict(self.outcome) if self.outcome is not None else {}
        return {"config": self.config, "overrides": self.overrides, **outcome}


@dataclass
class RetrainReport:
    """Filled in by :func:`training.retrain.run` as the run goes; ``None`` means not reached."""

    status: str = "error"  # promoted, rejected, dry_run, initialised, error, failed, interrupted
    started_at: str = field(default_factory=_timestamp)
    warnings: list[str] = field(default_factory=list)
    models_root: str | None = None
    seeded: str | None = None  # the version seeded from --base-model by this run
    mode: str | None = None  # finetune or scratch
    current: ScoredModel | None = None
    version: str | None = None
    candidate: ScoredModel | None = None
    data: DataSummary | None = None
    training: TrainingSummary | None = None
    evaluation: Evaluation | None = None
    rule: Rule | None = None
    would_promote: bool | None = None  # dry runs
    reload_pending: bool = False  # promoted, reloads not done yet
    reloads: list[ReloadOutcome] | None = None
    error: str | None = None
    stage: str | None = None  # the status reached when interrupted
    report_path: str | None = None
    exit_code: int | None = None
    finished_at: str | None = None
    seconds: float | None = None
    started: float = field(default_factory=time.monotonic, repr=False)

    @property
    def failed_reloads(self) -> list[ReloadOutcome]:
        return [outcome for outcome in self.reloads or [] if not outcome.ok]

    def finish(self, exit_code: int) -> None:
        """Record the exit status and the time taken."""
        self.exit_code = exit_code
        self.finished_at = _timestamp()
        self.seconds = round(time.monotonic() - self.started, 1)

    def _reload_entry(self) -> Any:
        if self.reloads is not None:
            return [outcome.to_report() for outcome in self.reloads]
        return "pending" if self.reload_pending else None

    def to_dict(self) -> dict[str, Any]:
        """The JSON report: the keys of the steps reached, in the order they happen."""
        current = self.current
        candidate = self.candidate
        entries: dict[str, Any] = {
            "status": self.status,
            "started_at": self.started_at,
            "warnings": self.warnings,
            "models_root": self.models_root,
            "seeded": self.seeded,
            "mode": self.mode,
            "current": None
            if current is None
            else {"version": current.version, "dir": current.dir, **_score(current)},
            "version": self.version,
            "candidate": None if candidate is None else {"dir": candidate.dir, **_score(candidate)},
            "data": asdict(self.data) if self.data is not None else None,
            "training": self.training.to_report() if self.training is not None else None,
            "evaluation": self.evaluation.to_report() if self.evaluation is not None else None,
            "rule": self.rule.to_report() if self.rule is not None else None,
            "would_promote": self.would_promote,
            "reload": self._reload_entry(),
            "error": self.error,
            "stage": self.stage,
            "report_path": self.report_path,
            "exit_code": self.exit_code,
            "finished_at": self.finished_at,
            "seconds": self.seconds,
        }
        if not self.reload_pending:  # first saved at the end: the path comes last
            entries["report_path"] = entries.pop("report_path")
        return {key: value for key, value in entries.items() if value is not None}

    def save(self, path: Path) -> None:
        """Write the JSON report to ``path`` atomically (and remember where)."""
        self.report_path = str(path)
        write_text(path, json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")


def _score(model: ScoredModel) -> dict[str, Any]:
    return model.score.to_report() if model.score is not None else {}


# ----------------------------------------------------------------------------- the summary


def _bleu(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _title(report: RetrainReport) -> str:
    title = f"{report.status.upper().replace('_', ' ')} {report.version or ''}".strip()
    if report.status == "dry_run":
        title += " (would promote)" if report.would_promote else " (would reject)"
    return f"mt-retrain: {title}"


def _score_lines(report: RetrainReport) -> list[str]:
    """The dev set, both scores and the rule, once the candidate has been scored."""
    lines = []
    if report.evaluation is not None:
        evaluation = report.evaluation
        lines.append(
            f"  dev set      {evaluation.reference} ({evaluation.sentences} sentences, "
            f"beam {evaluation.beam}, tokenized BLEU)"
        )
    candidate = report.candidate
    if candidate is None or candidate.score is None:
        return lines
    current = report.current or ScoredModel(dir=None)
    where = current.dir or "(none: the first model)"
    lines.append(f"  current      {_bleu(current.score.bleu if current.score else None)}  {where}")
    rule = report.rule or Rule(0.0, None, False)
    change = "" if rule.bleu_change is None else f" ({rule.bleu_change:+.2f})"
    lines.append(
        f"  candidate    {_bleu(candidate.score.bleu)}{change}  "
        f"rule: may drop at most {rule.max_bleu_drop:.2f} -> "
        f"{'pass' if rule.passed else 'fail'}"
    )
    lines.append(f"  candidate at {candidate.dir or '(deleted)'}")
    return lines


def _training_line(report: RetrainReport) -> list[str]:
    if report.data is None:
        return []
    outcome = report.training.outcome if report.training is not None else None
    steps = outcome.steps if outcome else "?"
    stopped = outcome.stopped_because if outcome else "?"
    seconds = outcome.seconds if outcome else "?"
    return [
        f"  training     {report.mode}: {report.data.new_pairs} new + "
        f"{report.data.original_pairs} original pairs, {steps} steps ({stopped}), {seconds} s"
    ]


def format_summary(report: RetrainReport) -> str:
    """The human-readable account of a run, printed at its end."""
    pointer = f"  pointer      {report.models_root}/current -> versions/{report.version}"
    lines = [_title(report)]
    if report.status == "initialised":
        lines.append(pointer)
    if report.error:
        lines.append(f"  error        {report.error}")
    lines += _score_lines(report)
    lines += _training_line(report)
    if report.status == "promoted":
        lines.append(pointer)
    for outcome in report.reloads or []:
        state = "ok" if outcome.ok else "FAILED"
        lines.append(f"  reload       {outcome.url}: {state} ({outcome.detail})")
    lines += [f"  warning      {warning}" for warning in report.warnings]
    if report.report_path:
        lines.append(f"  report       {report.report_path}")
    lines.append(f"  time         {report.seconds or 0:.1f} s, exit status {report.exit_code}")
    return "\n".join(lines)
