"""One retraining run: train a candidate on new parallel data and promote it only if it is no
worse than the model being served (``mt-retrain``; the command line is :mod:`cli.retrain`).

A run: seed ``current`` from ``base_model`` when the models root is new
(:mod:`training.model_store`); assemble the training data (the new pairs, plus a sample of the
original corpus against forgetting) and the dev set in a work directory
(:mod:`training.retrain_data`); score the current model on the dev set; train a candidate (from
the current model's weights and tokenizers, or from scratch) with :func:`training.train.train`;
score the candidate with the same decoding; promote it when ``candidate BLEU >= current BLEU -
max_bleu_drop`` (:mod:`training.promotion`): installed as ``versions/<version>``, then the
``current`` symlink swapped; finally ask the service(s) to load it
(:mod:`training.reload_client`). :func:`run` returns a :class:`RetrainReport` saying what
happened; it raises nothing for a failed run.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model.evaluation import EvaluationError
from model.nn.config import ConfigError
from model.store.checkpoint import CONFIG_FILE, ModelFileError, read_model_config
from model.store.languages import model_pair
from model.store.locations import find_project_path
from training.config import RunConfig, load_config
from training.data import ParallelDataError
from training.model_store import (
    IN_PROGRESS_MARKER,
    VERSION_PATTERN,
    ModelsRoot,
    ModelStoreError,
    utc_now,
)
from training.promotion import Evaluation, Rule, Score, score_model
from training.reload_client import DEFAULT_ATTEMPTS, DEFAULT_TIMEOUT_S, request_reload
from training.retrain_data import DevSet, PreparedData, load_dev_set, prepare_data
from training.retrain_report import (
    DataSummary,
    RetrainReport,
    ScoredModel,
    TrainingOutcome,
    TrainingSummary,
)
from training.shortlist import ShortlistRecipe, write_model_shortlist
from training.train import train

logger = logging.getLogger(__name__)

FINETUNE_CONFIG = "finetune.toml"
SCRATCH_CONFIG = "tiny.toml"
CONFIG_DIR_VARIABLE = "MT_CONFIG_DIR"


class RetrainError(Exception):
    """A problem with the request the user can fix (options, data): the report says ``error``."""


class Interrupted(BaseException):
    """Raised by a signal handler (SIGTERM, SIGHUP) to stop a run: it unwinds (``finally``
    blocks remove temporary files) and the report says ``interrupted``.

    A ``BaseException`` like ``KeyboardInterrupt``, so no ``except Exception`` swallows it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


# Failures that the user can fix: the report's status is "error" (mt-retrain exits 2).
USER_ERRORS = (
    RetrainError,
    ModelStoreError,
    ConfigError,
    ParallelDataError,
    ModelFileError,
    EvaluationError,
    FileNotFoundError,
)


@dataclass(frozen=True)
class RetrainRequest:
    """Everything one run needs; the ``mt-retrain`` options of the same names."""

    models_root: Path
    base_model: Path | None = None  # seeds ROOT/current when it is missing
    init_only: bool = False  # only seed current
    data: Path | None = None  # the new pairs: train.<source>/train.<target> (or .gz)
    dev_data: Path | None = None  # tst2012.* (default: found in data, else mix_original)
    mix_original: Path | None = None  # the original corpus (train.*)
    mix_ratio: float = 1.0  # original pairs per new pair
    config: Path | None = None  # recipe; default finetune.toml (tiny.toml from scratch)
    overrides: list[str] = field(default_factory=list)  # SECTION.KEY=VALUE
    corpora: list[str] = field(default_factory=list)  # NAME=DIR[:WEIGHT], mixed into training
    from_scratch: bool = False
    max_bleu_drop: float = 0.0
    beam: int = 1
    dev_limit: int = 0  # first N dev pairs (0 = all)
    device: str = "auto"
    max_batch_tokens: int = 4096  # for dev decoding
    version: str | None = None  # name of the new version (default: UTC time + -ft)
    dry_run: bool = False
    discard_rejected: bool = False
    reload_urls: list[str] = field(default_factory=list)
    admin_token: str | None = None
    reload_model_dir: str | None = None  # model_dir to send (default: ROOT/current, absolute)
    reload_timeout: float = DEFAULT_TIMEOUT_S
    reload_attempts: int = DEFAULT_ATTEMPTS
    work_dir: Path | None = None  # default ROOT/.work
    keep_work: bool = False
    report: Path | None = None  # default ROOT/reports/<version>.json


def check_request(request: RetrainRequest) -> None:
    """Refuse contradictory or incomplete requests before anything is touched."""
    if request.version is not None and not VERSION_PATTERN.match(request.version):
        raise RetrainError(
            f"--version {request.version!r}: use letters, digits, '.', '_' and '-' "
            "(not starting with '.' or '-')"
        )
    if request.init_only:
        if request.data is not None:
            raise RetrainError("--init-only does not train: drop --data")
        return
    if request.data is None:
        raise RetrainError("--data DIR is required (the new train.en/train.vi, or .vi/.en)")
    if request.mix_ratio < 0:
        raise RetrainError(f"--mix-ratio must be >= 0, got {request.mix_ratio}")
    if request.beam < 1:
        raise RetrainError(f"--beam must be >= 1, got {request.beam}")
    if request.reload_urls and not request.admin_token:
        raise RetrainError("--reload-url needs --admin-token (or MT_ADMIN_TOKEN)")


def default_config_path(from_scratch: bool) -> Path:
    """``finetune.toml`` (or ``tiny.toml`` from scratch) in ``$MT_CONFIG_DIR``, else in the
    ``configs/`` that :func:`model.store.locations.find_project_path` finds."""
    name = SCRATCH_CONFIG if from_scratch else FINETUNE_CONFIG
    if os.environ.get(CONFIG_DIR_VARIABLE):
        configured = Path(os.environ[CONFIG_DIR_VARIABLE]) / name
        if configured.is_file():
            return configured
    found = find_project_path(Path("configs") / name)
    if found is not None and found.is_file():
        return found
    looked = f"${CONFIG_DIR_VARIABLE}, ./configs or the source tree's configs/"
    raise RetrainError(f"no {name} in {looked}: pass --config FILE")


def report_file(request: RetrainRequest, report: RetrainReport) -> Path | None:
    """Where the JSON report goes: ``--report``, else ``ROOT/reports/<version>.json`` (none
    for ``--init-only`` or a run that failed before it had a version)."""
    if request.report is not None:
        return request.report
    if report.version and report.status != "initialised":
        return ModelsRoot(request.models_root).reports / f"{report.version}.json"
    return None


def save_report(request: RetrainRequest, report: RetrainReport) -> None:
    """Write the JSON report (atomically) where it belongs, if the run has one."""
    path = report_file(request, report)
    if path is not None:
        report.save(path)


# ----------------------------------------------------------------------------- the steps


@dataclass(frozen=True)
class _Inputs:
    config: RunConfig
    data: PreparedData
    dev: DevSet
    summary: DataSummary
    training: TrainingSummary


def _direction(current: Path | None) -> list[str]:
    """The ``--set`` assignments that train in the current model's direction (its metadata's
    languages: the recipes name none, so a Vietnamese→English model retrains as one)."""
    if current is None:
        return []
    source, target = model_pair(read_model_config(current))
    return [f"data.source_lang={source}", f"data.target_lang={target}"]


def _check_direction(config: RunConfig, current: Path | None) -> None:
    """Refuse a recipe (or ``--set``) that would train the other direction than ``current``."""
    if current is None:
        return
    wanted = model_pair(read_model_config(current))
    if (config.data.source_lang, config.data.target_lang) != wanted:
        raise RetrainError(
            f"the current model translates {wanted[0]} into {wanted[1]}: the candidate must "
            f"too (the recipe asks for {config.data.source_lang} into {config.data.target_lang})"
        )


def _prepare(request: RetrainRequest, attempt_dir: Path, current: Path | None) -> _Inputs:
    """Read the recipe (in the current model's direction), assemble the data directory, load
    the dev set."""
    assert request.data is not None  # check_request
    config_path = request.config or default_config_path(request.from_scratch)
    # --device applies to training too, unless a --set says otherwise (later values win).
    overrides = [f"train.device={request.device}"] if request.device != "auto" else []
    overrides += _direction(current) + request.overrides
    config = load_config(config_path, overrides, request.corpora)
    _check_direction(config, current)
    if request.dev_data is not None:
        dev_dirs = [request.dev_data]
    else:
        dev_dirs = [d for d in (request.data, request.mix_original) if d is not None]
    data = prepare_data(
        request.data,
        dev_dirs,
        config.data,
        attempt_dir,
        request.mix_original,
        request.mix_ratio,
        config.train.seed,
    )
    summary = DataSummary(
        new=str(request.data),
        new_pairs=data.new_pairs,
        original=str(request.mix_original) if request.mix_original else None,
        original_pairs=data.original_pairs,
    )
    dev = load_dev_set(
        data.dev_source, data.dev_reference, config.data.source_lang, request.dev_limit
    )
    return _Inputs(config, data, dev, summary, TrainingSummary(str(config_path), overrides))


def _train_candidate(
    config: RunConfig,
    data: PreparedData,
    init_model_dir: Path | None,
    attempt_dir: Path,
    cache_dir: Path,
) -> tuple[Path, TrainingOutcome]:
    """Train the candidate; returns its best (highest dev BLEU) model directory."""
    started = time.monotonic()
    result = train(
        config,
        data.directory,
        attempt_dir / "run",
        init_model_dir=init_model_dir,
        cache_dir=cache_dir,
    )
    if not (result.best_dir / CONFIG_FILE).is_file():
        raise RuntimeError(f"training finished without a best model in {result.best_dir}")
    outcome = TrainingOutcome(
        steps=result.steps,
        stopped_because=result.stopped_because,
        trainer_best_bleu=result.best_bleu,
        seconds=round(time.monotonic() - started, 1),
    )
    return result.best_dir, outcome


def _score(
    request: RetrainRequest, label: str, model_dir: Path, dev: DevSet
) -> tuple[Score, Evaluation]:
    """Score one model on the dev set with the request's decoding."""
    logger.info("scoring the %s model %s on %d dev sentences", label, model_dir, len(dev.sources))
    return score_model(model_dir, dev, request.beam, request.device, request.max_batch_tokens)


def _promotion_metadata(request: RetrainRequest, report: RetrainReport) -> dict[str, Any]:
    """What the promoted model's config.json records about its origin."""
    assert report.current and report.candidate and report.candidate.score
    assert report.evaluation and report.data
    parent_score = report.current.score
    return {
        "version": report.version,
        "promoted_at": utc_now().isoformat(timespec="seconds"),
        "parent_version": report.current.version,
        "retrain": {
            "mode": report.mode,
            "dev_bleu": report.candidate.score.bleu,
            "parent_dev_bleu": parent_score.bleu if parent_score else None,
            "dev_set": report.evaluation.reference,
            "beam": request.beam,
            "new_pairs": report.data.new_pairs,
            "original_pairs": report.data.original_pairs,
        },
    }


def _promote(
    request: RetrainRequest, root: ModelsRoot, candidate_dir: Path, report: RetrainReport
) -> None:
    """Install the candidate as ``versions/<version>``, point ``current`` at it, reload."""
    version = report.version
    assert version is not None and report.candidate is not None
    metadata = _promotion_metadata(request, report)
    installed = root.install(candidate_dir, root.versions / version, metadata, move=True)
    root.point_current_at(version)
    report.candidate.dir = str(installed)
    logger.info("promoted %s: %s -> %s", version, root.pointer, installed)
    # The promotion is done: record it now, so that a run killed during the reloads still
    # leaves a report saying so (the command line rewrites it at the end).
    report.reload_pending = True
    save_report(request, report)
    model_dir = request.reload_model_dir or str(root.pointer.absolute())
    report.reloads = [
        request_reload(
            url,
            request.admin_token or "",
            {"model_dir": model_dir},
            expected_version=version,
            timeout=request.reload_timeout,
            attempts=request.reload_attempts,
        )
        for url in request.reload_urls
    ]
    for outcome in report.failed_reloads:
        report.warnings.append(
            f"reload failed at {outcome.url}: {outcome.detail} (the promotion stands; the "
            "service keeps its old model until it reloads or restarts)"
        )


def _decide(
    request: RetrainRequest, root: ModelsRoot, candidate_dir: Path, report: RetrainReport
) -> None:
    """Apply the promotion rule: promote, keep as rejected, or (dry run) only report."""
    current, candidate = report.current, report.candidate
    assert current and candidate and candidate.score and report.version
    current_bleu = current.score.bleu if current.score else None
    rule = Rule.apply(current_bleu, candidate.score.bleu, request.max_bleu_drop)
    report.rule = rule
    if request.dry_run:
        report.status, report.would_promote = "dry_run", rule.passed
        candidate.dir = str(candidate_dir)
    elif rule.passed:
        report.status = "promoted"
        _promote(request, root, candidate_dir, report)
    else:
        report.status = "rejected"
        if not request.discard_rejected:
            destination = root.rejected / report.version
            kept = root.install(candidate_dir, destination, {"version": report.version}, move=True)
            candidate.dir = str(kept)


# ----------------------------------------------------------------------------- the run


def _attempt(
    request: RetrainRequest,
    root: ModelsRoot,
    current: Path | None,
    attempt_dir: Path,
    cache_dir: Path,
    report: RetrainReport,
) -> None:
    """Prepare, score the current model, train and score the candidate, decide."""
    assert report.current is not None and report.candidate is not None
    inputs = _prepare(request, attempt_dir, current)
    report.data, report.training = inputs.summary, inputs.training
    # The current model first: a model that cannot be loaded fails before hours of
    # training, and the reference number does not depend on the candidate.
    if current is not None:
        report.current.score, report.evaluation = _score(request, "current", current, inputs.dev)
    init = None if request.from_scratch else current
    candidate_dir, outcome = _train_candidate(
        inputs.config, inputs.data, init, attempt_dir, cache_dir
    )
    inputs.training.outcome = outcome
    # The candidate serves with a shortlist of its own training pairs, as the bundled model does
    write_model_shortlist(
        candidate_dir, inputs.data.directory, inputs.config.data.train_prefix, ShortlistRecipe()
    )
    report.candidate.score, report.evaluation = _score(
        request, "candidate", candidate_dir, inputs.dev
    )
    _decide(request, root, candidate_dir, report)


def _start(request: RetrainRequest, root: ModelsRoot, report: RetrainReport) -> Path | None:
    """Seed if needed, name the new version; returns the current model directory."""
    current, report.seeded = root.current_or_seed(request.base_model)
    if current is None and not request.from_scratch:
        raise RetrainError(
            f"{root.pointer} does not exist: seed it with --base-model DIR, "
            "or train the first model with --from-scratch"
        )
    report.mode = "scratch" if request.from_scratch else "finetune"
    report.current = ScoredModel(
        dir=str(current) if current else None, version=current.name if current else None
    )
    suffix = "scratch" if request.from_scratch else "ft"
    version = request.version or root.unique_version(f"{utc_now():%Y%m%d-%H%M%S}-{suffix}")
    if root.taken(version):
        raise RetrainError(f"version {version} exists already in {root.path}")
    report.version, report.candidate = version, ScoredModel(dir=None)
    return current


def _retrain(request: RetrainRequest, root: ModelsRoot, report: RetrainReport) -> None:
    """A whole retraining, under the root's lock, in a work directory removed at the end."""
    current = _start(request, root, report)
    assert report.version is not None
    work_dir = request.work_dir or root.path / ".work"
    swept = root.sweep_stale(work_dir)
    if swept:
        report.warnings.append(f"removed {len(swept)} leftovers of interrupted runs")
    attempt_dir = work_dir / report.version
    shutil.rmtree(attempt_dir, ignore_errors=True)  # left by a --dry-run of that name
    attempt_dir.mkdir(parents=True)
    (attempt_dir / IN_PROGRESS_MARKER).write_text(f"{os.getpid()}\n")
    try:
        _attempt(request, root, current, attempt_dir, work_dir / ".cache", report)
    finally:
        if not (request.keep_work or request.dry_run):
            shutil.rmtree(attempt_dir, ignore_errors=True)
        else:  # kept on purpose: not a leftover for the next run to sweep
            (attempt_dir / IN_PROGRESS_MARKER).unlink(missing_ok=True)


def _initialise(request: RetrainRequest, root: ModelsRoot, report: RetrainReport) -> None:
    """``--init-only``: seed ``current`` when missing. Without the lock when there is
    nothing to do: container entrypoints call this on every start, also while a long
    retraining holds the lock."""
    current = root.current_dir()
    if current is None:
        if request.base_model is None:
            raise RetrainError(f"{root.pointer} does not exist: pass --base-model DIR")
        with root.locked(wait=True):  # replicas starting together seed once
            current, report.seeded = root.current_or_seed(request.base_model)
    report.status = "initialised"
    report.version = current.name if current else None


def run(request: RetrainRequest) -> RetrainReport:
    """One retraining (or ``init_only`` seeding). Never raises for a failed run: the report's
    ``status`` says how it ended (``error``: a problem the user can fix; ``failed``: anything
    else; ``interrupted``: :class:`Interrupted` or Ctrl-C, with the ``stage`` reached)."""
    report = RetrainReport()
    try:
        check_request(request)
        root = ModelsRoot(request.models_root)
        report.models_root = str(root.path.absolute())
        if request.init_only:
            _initialise(request, root, report)
        else:
            with root.locked(wait=False):
                _retrain(request, root, report)
    except (Interrupted, KeyboardInterrupt) as exc:
        report.stage, report.status = report.status, "interrupted"
        report.error = str(exc) or "interrupted"
    except USER_ERRORS as exc:
        report.status, report.error = "error", str(exc)
    except Exception as exc:
        logger.exception("mt-retrain failed")
        report.status, report.error = "failed", f"{type(exc).__name__}: {exc}"
    return report
