"""``mt-retrain``: train a candidate on new parallel data and promote it only if it is no worse.

    mt-retrain --models-root /models --init-only --base-model models/en-vi
    mt-retrain --models-root /models --data new/ --dev-data iwslt15/ \
        --mix-original iwslt15/ --mix-ratio 1 --reload-url http://localhost:5000
    mt-retrain --models-root /models --data iwslt15/ --from-scratch --config configs/cpu.toml

A models root holds every promoted model and a pointer to the one being served::

    ROOT/current -> versions/<version>    relative symlink, swapped atomically (rename(2))
    ROOT/versions/<version>/              complete model directories, never modified in place
    ROOT/rejected/<version>/              candidates that failed the promotion rule
    ROOT/reports/<version>.json           what each run did (also printed as a summary)
    ROOT/.work/                           runs in progress, corpus/tokenizer cache
    ROOT/.lock                            one mt-retrain at a time per root

One run: seed ``current`` from ``--base-model`` when the root is new; assemble the training
data (the new pairs, plus a sample of the original corpus against forgetting) and the dev set
in a work directory; score the current model on the dev set; train a candidate (from the
current model's weights and tokenizers, or ``--from-scratch``); score the candidate with the
same decoding; promote it when ``candidate BLEU >= current BLEU - max_bleu_drop``: a temporary
sibling in ``versions/`` renamed into place, ``metadata.version`` set, the ``current`` symlink
replaced; finally ask the service(s) to load it (``POST /admin/reload``). Readers of ``current``
see the old complete model or the new complete model, never a mixture, and never a worse one.

Exit status: 0 promoted (also: ``--init-only`` done, ``--dry-run`` candidate would be promoted),
1 rejected (``--dry-run``: would be rejected), 2 usage or data error, 3 promoted but a reload
request failed (the promotion stands), 4 unexpected failure (e.g. training crashed).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import json
import logging
import os
import random
import re
import shutil
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from model.checkpoint import (
    CONFIG_FILE,
    ModelFileError,
    fsync_dir,
    load_model,
    read_model_config,
)
from model.config import ConfigError
from model.evaluation import (
    EvaluationError,
    evaluate_translator,
    looks_moses_tokenized,
    moses_detokenize,
)
from model.translator import Translator
from training.config import DataConfig, RunConfig, load_config
from training.data import ParallelDataError, find_corpus_file, read_parallel
from training.train import train

logger = logging.getLogger("training.retrain")

EXIT_PROMOTED = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2
EXIT_RELOAD_FAILED = 3
EXIT_FAILED = 4

FINETUNE_CONFIG = "finetune.toml"
SCRATCH_CONFIG = "tiny.toml"
# Directory names that are safe in a path and in a URL: no slashes, no leading dot.
VERSION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


# Marks a work directory of a run in progress; a run killed outright (SIGKILL, power loss)
# leaves it behind, and the next run under the lock removes that directory.
IN_PROGRESS_MARKER = ".in-progress"


class RetrainError(Exception):
    """A problem the user can fix (arguments, data, models root): exit status 2."""


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwind (``finally`` blocks remove temporary files), report.

    A ``BaseException`` like ``KeyboardInterrupt``, so no ``except Exception`` swallows it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


# ----------------------------------------------------------------------------- filesystem


def _fsync_tree(path: Path) -> None:
    """Flush every file under ``path`` (and the directories) before it is renamed into view."""
    for directory, _, files in os.walk(path):
        for name in files:
            with open(Path(directory) / name, "rb") as handle:
                os.fsync(handle.fileno())
        fsync_dir(Path(directory))


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` via a temporary sibling: readers see old or new, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def update_metadata(model_dir: Path, updates: dict[str, Any]) -> None:
    """Merge ``updates`` into the ``metadata`` section of a model's config.json.

    The sha256 sums in config.json cover the weights and tokenizer files, not config.json
    itself, so they stay valid. Meant for staging directories nobody serves yet.
    """
    config = read_model_config(model_dir)
    config["metadata"] = {**(config.get("metadata") or {}), **updates}
    _write_atomically(
        model_dir / CONFIG_FILE, json.dumps(config, indent=2, ensure_ascii=False) + "\n"
    )


def _same_model(first: Path, second: Path) -> bool:
    """Whether two model directories hold the same weights and tokenizers (by their sha256s)."""
    try:
        a, b = read_model_config(first), read_model_config(second)
    except ModelFileError:
        return False
    return (a["weights"], a["tokenizer"]) == (b["weights"], b["tokenizer"])


def _temporaries(folder: Path) -> list[Path]:
    """``.NAME.tmp-XXXXXXXX`` entries in ``folder`` (staging copies, links, files)."""
    if not folder.is_dir():
        return []
    return [path for path in folder.iterdir() if re.match(r"^\..+\.tmp-[0-9a-f]{8}$", path.name)]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ModelsRoot:
    """The versioned model store described in the module docstring."""

    path: Path

    @property
    def pointer(self) -> Path:
        return self.path / "current"

    @property
    def versions(self) -> Path:
        return self.path / "versions"

    @property
    def rejected(self) -> Path:
        return self.path / "rejected"

    @property
    def reports(self) -> Path:
        return self.path / "reports"

    def current_dir(self) -> Path | None:
        """The model directory ``current`` points at, or None when the root is not seeded."""
        pointer = self.pointer
        if not pointer.is_symlink():
            if pointer.exists():
                raise RetrainError(
                    f"{pointer} is not a symlink: move that model directory into "
                    f"{self.versions}/ and let mt-retrain manage {pointer.name}"
                )
            return None
        target = pointer.resolve()
        if not target.is_dir():
            raise RetrainError(f"{pointer} points at {os.readlink(pointer)}, which is missing")
        return target

    def sweep_stale(self, work_dir: Path) -> list[str]:
        """Remove what killed runs left behind; returns the removed paths. Call under the lock:
        no other run can be writing them. Temporary siblings (``.NAME.tmp-*``) in versions/ and
        rejected/, ``.current.tmp-*`` links, and work directories still marked in progress
        (those kept on purpose, --keep-work or --dry-run, are not marked)."""
        stale = [
            *(p for folder in (self.versions, self.rejected) for p in _temporaries(folder)),
            *_temporaries(self.path),
        ]
        if work_dir.is_dir():
            stale += [p for p in work_dir.iterdir() if (p / IN_PROGRESS_MARKER).exists()]
        for path in stale:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            logger.warning("removed %s, left by an interrupted run", path)
        return [str(path) for path in stale]

    def taken(self, version: str) -> bool:
        return (self.versions / version).exists() or (self.rejected / version).exists()

    def unique_version(self, wanted: str) -> str:
        """``wanted``, or ``wanted-2``, ``wanted-3``... if a model of that name exists."""
        version, suffix = wanted, 2
        while self.taken(version):
            version, suffix = f"{wanted}-{suffix}", suffix + 1
        return version

    @contextlib.contextmanager
    def locked(self, wait: bool) -> Iterator[None]:
        """Hold ``ROOT/.lock`` (an advisory flock): promotions never interleave."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".lock", "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                raise RetrainError(
                    f"another mt-retrain is working on {self.path} (it holds {handle.name})"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def install(
        self, source: Path, destination: Path, metadata: dict[str, Any], move: bool
    ) -> Path:
        """Put a model directory at ``destination`` whole: copy (or move) it into a temporary
        sibling, set ``metadata``, flush, then one rename makes it visible."""
        if destination.exists():
            raise RetrainError(f"{destination} already exists")
        destination.parent.mkdir(parents=True, exist_ok=True)
        staging = destination.parent / f".{destination.name}.tmp-{uuid.uuid4().hex[:8]}"
        try:
            if move:
                try:
                    os.rename(source, staging)
                except OSError as exc:
                    if exc.errno != errno.EXDEV:  # another filesystem: fall back to a copy
                        raise
                    shutil.copytree(source, staging)
            else:
                shutil.copytree(source, staging)
            update_metadata(staging, metadata)
            _fsync_tree(staging)
            os.rename(staging, destination)
            fsync_dir(destination.parent)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return destination

    def point_current_at(self, version: str) -> None:
        """Swap ``current`` to ``versions/<version>`` atomically: a new symlink under a
        temporary name, then rename(2) over the old one. The link is relative, so the root
        may be mounted anywhere."""
        if not (self.versions / version).is_dir():
            raise RetrainError(f"{self.versions / version}: no such model version")
        tmp = self.path / f".current.tmp-{uuid.uuid4().hex[:8]}"
        os.symlink(Path(self.versions.name) / version, tmp)
        try:
            os.replace(tmp, self.pointer)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        fsync_dir(self.path)

    def seed(self, base_model: Path) -> str:
        """Make ``base_model`` (copied into ``versions/``) the current model; returns its
        version. Reuses an identical copy left by an interrupted earlier seeding."""
        load_model(base_model)  # every file present and matching its sha256, or ModelFileError
        metadata = read_model_config(base_model).get("metadata") or {}
        named = str(metadata.get("version") or "")
        version = named if VERSION_PATTERN.match(named) else f"base-{_now():%Y%m%d-%H%M%S}"
        if not _same_model(self.versions / version, base_model):
            version = self.unique_version(version)
            self.install(
                base_model,
                self.versions / version,
                {"version": version, "seeded_from": str(base_model.absolute())},
                move=False,
            )
        self.point_current_at(version)
        logger.info("seeded %s with %s (version %s)", self.pointer, base_model, version)
        return version


# ----------------------------------------------------------------------------- data


@dataclass(frozen=True)
class PreparedData:
    """A data directory laid out the way :func:`training.train.train` expects it."""

    directory: Path
    new_pairs: int
    original_pairs: int  # sampled from the original corpus and added to the new pairs
    dev_source: Path
    dev_reference: Path


def _link(target: Path, directory: Path) -> Path:
    link = directory / target.name
    link.symlink_to(target.resolve())
    return link


def _find_dev_files(candidates: list[Path], settings: DataConfig) -> tuple[Path, Path]:
    """The first directory of ``candidates`` with both dev files (``tst2012.en``/``.vi``)."""
    for directory in candidates:
        try:
            return (
                find_corpus_file(directory, settings.dev_prefix, settings.source_lang),
                find_corpus_file(directory, settings.dev_prefix, settings.target_lang),
            )
        except ParallelDataError:
            continue
    names = f"{settings.dev_prefix}.{settings.source_lang}/.{settings.target_lang}"
    looked = ", ".join(str(d) for d in candidates)
    raise RetrainError(f"no dev set ({names}, plain or .gz) in {looked}: pass --dev-data DIR")


def prepare_data(
    new_dir: Path,
    dev_dirs: list[Path],
    settings: DataConfig,
    work_dir: Path,
    mix_dir: Path | None = None,
    mix_ratio: float = 0.0,
    seed: int = 0,
) -> PreparedData:
    """Lay out ``work_dir/data``: the new pairs (symlinked, or written together with
    ``round(mix_ratio x new pairs)`` pairs sampled from ``mix_dir``'s training corpus) and
    symlinks to the dev files found first in ``dev_dirs``."""
    prefix, source_lang, target_lang = (
        settings.train_prefix,
        settings.source_lang,
        settings.target_lang,
    )
    new_source = find_corpus_file(new_dir, prefix, source_lang)
    new_target = find_corpus_file(new_dir, prefix, target_lang)
    sources, targets = read_parallel(new_source, new_target)
    if not any(line.strip() for line in sources):
        raise ParallelDataError(f"{new_source}: no training pairs")
    dev_source, dev_reference = _find_dev_files(dev_dirs, settings)
    directory = work_dir / "data"
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)

    sampled = 0
    if mix_dir is not None and mix_ratio > 0:
        original_sources, original_targets = read_parallel(
            find_corpus_file(mix_dir, prefix, source_lang),
            find_corpus_file(mix_dir, prefix, target_lang),
        )
        sampled = min(len(original_sources), round(mix_ratio * len(sources)))
        picked = sorted(random.Random(seed).sample(range(len(original_sources)), sampled))
        sources = sources + [original_sources[i] for i in picked]
        targets = targets + [original_targets[i] for i in picked]
        for lang, lines in ((source_lang, sources), (target_lang, targets)):
            text = "".join(line + "\n" for line in lines)
            (directory / f"{prefix}.{lang}").write_text(text, encoding="utf-8")
    else:
        _link(new_source, directory)
        _link(new_target, directory)
    return PreparedData(
        directory=directory,
        new_pairs=len(sources) - sampled,
        original_pairs=sampled,
        dev_source=_link(dev_source, directory),
        dev_reference=_link(dev_reference, directory),
    )


# ----------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class DevSet:
    """Dev sentences ready to translate (natural text) and their references as in the file."""

    sources: list[str]
    references: list[str]
    source_path: Path
    reference_path: Path
    source_was_tokenized: bool


def load_dev_set(source: Path, reference: Path, source_lang: str, limit: int = 0) -> DevSet:
    """Read the dev pair; a Moses-tokenized source (IWSLT style) is detokenized first, as
    ``mt-eval`` does, so the models see natural text; references may be either kind."""
    sources, references = read_parallel(source, reference)
    if limit > 0:
        sources, references = sources[:limit], references[:limit]
    if not sources:
        raise ParallelDataError(f"{source}: the dev set is empty")
    tokenized = looks_moses_tokenized(sources)
    if tokenized:
        sources = moses_detokenize(sources, lang=source_lang)
    return DevSet(sources, references, source, reference, tokenized)


@dataclass(frozen=True)
class Score:
    bleu: float  # tokenized BLEU, as mt-eval reports it
    chrf: float | None  # only when the references are natural text
    seconds: float


def score_model(
    model_dir: Path, dev: DevSet, beam: int, device: str, max_batch_tokens: int
) -> tuple[Score, dict[str, Any]]:
    """Translate the dev set with ``model_dir`` and score it exactly like ``mt-eval``.
    Returns the score and the evaluation settings (for the report)."""
    translator = Translator.from_dir(model_dir, device=device, max_batch_tokens=max_batch_tokens)
    result = evaluate_translator(translator, dev.sources, dev.references, None, beam)
    settings = {
        "sentences": result["sentences"],
        "ref_tokenized": result["ref_tokenized"],
        "signature": result["signatures"]["bleu_tokenized"],
        "device": translator.model_info["device"],
    }
    return Score(result["bleu_tokenized"], result["chrf"], result["seconds"]), settings


def passes(current_bleu: float | None, candidate_bleu: float, max_bleu_drop: float) -> bool:
    """The promotion rule: the candidate may be at most ``max_bleu_drop`` BLEU worse (a
    negative value demands an improvement); anything beats having no model at all."""
    return current_bleu is None or candidate_bleu >= current_bleu - max_bleu_drop


# ----------------------------------------------------------------------------- reload


@dataclass(frozen=True)
class ReloadOutcome:
    url: str
    ok: bool
    status: int | None  # HTTP status; None when no answer came
    detail: str  # the served version, or what went wrong


def reload_endpoint(url: str) -> str:
    """``http://host:5000`` -> ``http://host:5000/admin/reload``; a URL with a path is kept."""
    if urllib.parse.urlsplit(url).path in ("", "/"):
        return url.rstrip("/") + "/admin/reload"
    return url


def _served_version(body: bytes) -> str | None:
    """``metadata.version`` from a reload answer (the service's ``GET /model`` fields)."""
    try:
        answer = json.loads(body.decode("utf-8", "replace"))
    except ValueError:
        return None
    metadata = answer.get("metadata") if isinstance(answer, dict) else None
    version = metadata.get("version") if isinstance(metadata, dict) else None
    return str(version) if version is not None else None


def request_reload(
    url: str,
    token: str,
    model_dir: str,
    expected_version: str,
    timeout: float,
    attempts: int = 3,
) -> ReloadOutcome:
    """``POST /admin/reload`` with a bearer token and ``{"model_dir": model_dir}``.

    Succeeds when the service answers 2xx and (if it says) serves ``expected_version``: a
    different version means it sees another models root under that path. Connection failures
    and 5xx answers (a service restarting) are retried; 4xx answers (bad token, model rejected)
    are not.
    """
    endpoint = reload_endpoint(url)
    body = json.dumps({"model_dir": model_dir}).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    outcome = ReloadOutcome(endpoint, False, None, "not attempted")
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(endpoint, data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, version = response.status, _served_version(response.read())
        except urllib.error.HTTPError as exc:
            message = exc.read().decode("utf-8", "replace")[:300]
            outcome = ReloadOutcome(endpoint, False, exc.code, f"HTTP {exc.code}: {message}")
            if exc.code < 500:
                return outcome
        except OSError as exc:  # refused, timed out, unresolvable
            outcome = ReloadOutcome(endpoint, False, None, str(exc))
        else:
            if version is None:
                return ReloadOutcome(endpoint, True, status, "reloaded (version not reported)")
            if version != expected_version:
                detail = f"the service serves version {version}, not {expected_version}"
                return ReloadOutcome(endpoint, False, status, detail)
            return ReloadOutcome(endpoint, True, status, f"serving version {version}")
        if attempt < attempts:
            time.sleep(min(2.0**attempt, 10.0))
    return outcome


# ----------------------------------------------------------------------------- the run


def default_config_path(from_scratch: bool) -> Path:
    """``finetune.toml`` (or ``tiny.toml`` from scratch) in ``$MT_CONFIG_DIR``, ``./configs``
    or the source tree's ``configs/``."""
    name = SCRATCH_CONFIG if from_scratch else FINETUNE_CONFIG
    folders = [Path.cwd() / "configs", Path(__file__).resolve().parents[1] / "configs"]
    if os.environ.get("MT_CONFIG_DIR"):
        folders.insert(0, Path(os.environ["MT_CONFIG_DIR"]))
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    raise RetrainError(f"no {name} in {', '.join(map(str, folders))}: pass --config FILE")


def _check_arguments(args: argparse.Namespace) -> None:
    if args.version is not None and not VERSION_PATTERN.match(args.version):
        raise RetrainError(
            f"--version {args.version!r}: use letters, digits, '.', '_' and '-' "
            "(not starting with '.' or '-')"
        )
    if args.init_only:
        if args.data is not None:
            raise RetrainError("--init-only does not train: drop --data")
        return
    if args.data is None:
        raise RetrainError("--data DIR is required (the new train.en/train.vi)")
    if args.mix_ratio < 0:
        raise RetrainError(f"--mix-ratio must be >= 0, got {args.mix_ratio}")
    if args.beam < 1:
        raise RetrainError(f"--beam must be >= 1, got {args.beam}")
    if args.reload_url and not args.admin_token:
        raise RetrainError("--reload-url needs --admin-token (or MT_ADMIN_TOKEN)")


def _prepare(
    args: argparse.Namespace, attempt_dir: Path, report: dict[str, Any]
) -> tuple[RunConfig, PreparedData, DevSet]:
    """Read the recipe, assemble the data directory, load the dev set; fills
    ``report["data"]`` and ``report["training"]``."""
    config_path = args.config or default_config_path(args.from_scratch)
    # --device applies to training too, unless a --set says otherwise (later values win).
    overrides = [f"train.device={args.device}"] if args.device != "auto" else []
    overrides += args.overrides
    config = load_config(config_path, overrides)
    if args.dev_data is not None:
        dev_dirs = [args.dev_data]
    else:
        dev_dirs = [d for d in (args.data, args.mix_original) if d is not None]
    data = prepare_data(
        args.data,
        dev_dirs,
        config.data,
        attempt_dir,
        args.mix_original,
        args.mix_ratio,
        config.train.seed,
    )
    report["data"] = {
        "new": str(args.data),
        "new_pairs": data.new_pairs,
        "original": str(args.mix_original) if args.mix_original else None,
        "original_pairs": data.original_pairs,
    }
    report["training"] = {"config": str(config_path), "overrides": overrides}
    dev = load_dev_set(data.dev_source, data.dev_reference, config.data.source_lang, args.dev_limit)
    return config, data, dev


def _train_candidate(
    config: RunConfig,
    data: PreparedData,
    init_model_dir: Path | None,
    attempt_dir: Path,
    cache_dir: Path,
    report: dict[str, Any],
) -> Path:
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
    report["training"].update(
        steps=result.steps,
        stopped_because=result.stopped_because,
        trainer_best_bleu=result.best_bleu,
        seconds=round(time.monotonic() - started, 1),
    )
    return result.best_dir


def _evaluate(
    args: argparse.Namespace, label: str, model_dir: Path, dev: DevSet, report: dict[str, Any]
) -> float:
    logger.info("scoring the %s model %s on %d dev sentences", label, model_dir, len(dev.sources))
    score, settings = score_model(model_dir, dev, args.beam, args.device, args.max_batch_tokens)
    report["evaluation"] = {
        "source": str(dev.source_path.resolve()),
        "reference": str(dev.reference_path.resolve()),
        "source_was_tokenized": dev.source_was_tokenized,
        "beam": args.beam,
        "metric": "tokenized BLEU (as mt-eval)",
        **settings,
    }
    report[label].update(bleu=score.bleu, chrf=score.chrf, eval_seconds=score.seconds)
    return score.bleu


def _promote(
    args: argparse.Namespace,
    root: ModelsRoot,
    candidate: Path,
    version: str,
    report: dict[str, Any],
) -> int:
    """Install the candidate as ``versions/<version>``, point ``current`` at it, reload."""
    metadata = {
        "version": version,
        "promoted_at": _now().isoformat(timespec="seconds"),
        "parent_version": report["current"].get("version"),
        "retrain": {
            "mode": report["mode"],
            "dev_bleu": report["candidate"]["bleu"],
            "parent_dev_bleu": report["current"].get("bleu"),
            "dev_set": report["evaluation"]["reference"],
            "beam": args.beam,
            "new_pairs": report["data"]["new_pairs"],
            "original_pairs": report["data"]["original_pairs"],
        },
    }
    installed = root.install(candidate, root.versions / version, metadata, move=True)
    root.point_current_at(version)
    report["candidate"]["dir"] = str(installed)
    logger.info("promoted %s: %s -> %s", version, root.pointer, installed)
    # The promotion is done: record it now, so that a run killed during the reloads still
    # leaves a report saying so (main() rewrites it at the end).
    report["reload"] = "pending"
    save_report(args, report)
    model_dir = args.reload_model_dir or str(root.pointer.absolute())
    outcomes = [
        request_reload(
            url, args.admin_token, model_dir, version, args.reload_timeout, args.reload_attempts
        )
        for url in args.reload_url
    ]
    report["reload"] = [asdict(outcome) for outcome in outcomes]
    failed = [outcome for outcome in outcomes if not outcome.ok]
    for outcome in failed:
        report["warnings"].append(
            f"reload failed at {outcome.url}: {outcome.detail} (the promotion stands; the "
            "service keeps its old model until it reloads or restarts)"
        )
    return EXIT_RELOAD_FAILED if failed else EXIT_PROMOTED


def _seed_if_needed(
    args: argparse.Namespace, root: ModelsRoot, report: dict[str, Any]
) -> Path | None:
    """The current model directory, seeding it from ``--base-model`` when missing."""
    current = root.current_dir()
    if current is None and args.base_model is not None:
        report["seeded"] = root.seed(args.base_model)
        current = root.current_dir()
    return current


def _decide(
    args: argparse.Namespace,
    root: ModelsRoot,
    candidate: Path,
    current_bleu: float | None,
    candidate_bleu: float,
    report: dict[str, Any],
) -> int:
    """Apply the promotion rule: promote, keep as rejected, or (dry run) only report."""
    version = report["version"]
    accepted = passes(current_bleu, candidate_bleu, args.max_bleu_drop)
    report["rule"] = {
        "max_bleu_drop": args.max_bleu_drop,
        "bleu_change": None if current_bleu is None else round(candidate_bleu - current_bleu, 2),
        "passed": accepted,
    }
    if args.dry_run:
        report.update(status="dry_run", would_promote=accepted)
        report["candidate"]["dir"] = str(candidate)
        return EXIT_PROMOTED if accepted else EXIT_REJECTED
    if accepted:
        report["status"] = "promoted"
        return _promote(args, root, candidate, version, report)
    report["status"] = "rejected"
    if not args.discard_rejected:
        kept = root.install(candidate, root.rejected / version, {"version": version}, move=True)
        report["candidate"]["dir"] = str(kept)
    return EXIT_REJECTED


def run(args: argparse.Namespace, report: dict[str, Any]) -> int:
    """One mt-retrain invocation; fills ``report`` as it goes and returns the exit status."""
    _check_arguments(args)
    root = ModelsRoot(args.models_root)
    report["models_root"] = str(root.path.absolute())
    if args.init_only:
        # Fast path without the lock: container entrypoints call this on every start, also
        # while a long retraining holds the lock.
        current = root.current_dir()
        if current is None:
            if args.base_model is None:
                raise RetrainError(f"{root.pointer} does not exist: pass --base-model DIR")
            with root.locked(wait=True):  # replicas starting together seed once
                current = _seed_if_needed(args, root, report)
        report.update(status="initialised", version=current.name if current else None)
        return EXIT_PROMOTED

    with root.locked(wait=False):
        current = _seed_if_needed(args, root, report)
        if current is None and not args.from_scratch:
            raise RetrainError(
                f"{root.pointer} does not exist: seed it with --base-model DIR, "
                "or train the first model with --from-scratch"
            )
        report["mode"] = "scratch" if args.from_scratch else "finetune"
        report["current"] = {
            "version": current.name if current else None,
            "dir": str(current) if current else None,
        }
        suffix = "scratch" if args.from_scratch else "ft"
        version = args.version or root.unique_version(f"{_now():%Y%m%d-%H%M%S}-{suffix}")
        if root.taken(version):
            raise RetrainError(f"version {version} exists already in {root.path}")
        report.update(version=version, candidate={"dir": None})
        work_dir = args.work_dir or root.path / ".work"
        swept = root.sweep_stale(work_dir)
        if swept:
            report["warnings"].append(f"removed {len(swept)} leftovers of interrupted runs")
        attempt_dir = work_dir / version
        shutil.rmtree(attempt_dir, ignore_errors=True)  # left by a --dry-run of that name
        attempt_dir.mkdir(parents=True)
        (attempt_dir / IN_PROGRESS_MARKER).write_text(f"{os.getpid()}\n")
        try:
            config, data, dev = _prepare(args, attempt_dir, report)
            # The current model first: a model that cannot be loaded fails before hours of
            # training, and the reference number does not depend on the candidate.
            current_bleu = _evaluate(args, "current", current, dev, report) if current else None
            init = None if args.from_scratch else current
            candidate = _train_candidate(
                config, data, init, attempt_dir, work_dir / ".cache", report
            )
            candidate_bleu = _evaluate(args, "candidate", candidate, dev, report)
            return _decide(args, root, candidate, current_bleu, candidate_bleu, report)
        finally:
            if not (args.keep_work or args.dry_run):
                shutil.rmtree(attempt_dir, ignore_errors=True)
            else:  # kept on purpose: not a leftover for the next run to sweep
                (attempt_dir / IN_PROGRESS_MARKER).unlink(missing_ok=True)


# ----------------------------------------------------------------------------- output


def _bleu(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def format_summary(report: dict[str, Any]) -> str:
    """The human-readable account of a run, printed to stdout."""
    status = report.get("status", "error")
    title = f"{status.upper().replace('_', ' ')} {report.get('version') or ''}".strip()
    if status == "dry_run":
        title += " (would promote)" if report.get("would_promote") else " (would reject)"
    lines = [f"mt-retrain: {title}"]
    if status == "initialised":
        lines.append(
            f"  pointer      {report['models_root']}/current -> versions/{report['version']}"
        )
    if report.get("error"):
        lines.append(f"  error        {report['error']}")
    current, candidate = report.get("current") or {}, report.get("candidate") or {}
    evaluation, data = report.get("evaluation"), report.get("data")
    if evaluation:
        lines.append(
            f"  dev set      {evaluation['reference']} ({evaluation['sentences']} sentences, "
            f"beam {evaluation['beam']}, tokenized BLEU)"
        )
    if "bleu" in candidate:
        where = current.get("dir") or "(none: the first model)"
        lines.append(f"  current      {_bleu(current.get('bleu'))}  {where}")
        rule = report.get("rule", {})
        change = rule.get("bleu_change")
        change_text = "" if change is None else f" ({change:+.2f})"
        lines.append(
            f"  candidate    {_bleu(candidate.get('bleu'))}{change_text}  "
            f"rule: may drop at most {rule.get('max_bleu_drop', 0):.2f} -> "
            f"{'pass' if rule.get('passed') else 'fail'}"
        )
        lines.append(f"  candidate at {candidate.get('dir') or '(deleted)'}")
    if data:
        training = report.get("training", {})
        lines.append(
            f"  training     {report.get('mode')}: {data['new_pairs']} new + "
            f"{data['original_pairs']} original pairs, {training.get('steps', '?')} steps "
            f"({training.get('stopped_because', '?')}), {training.get('seconds', '?')} s"
        )
    if status == "promoted":
        lines.append(
            f"  pointer      {report['models_root']}/current -> versions/{report['version']}"
        )
    reloads = report.get("reload")
    for outcome in reloads if isinstance(reloads, list) else []:
        state = "ok" if outcome["ok"] else "FAILED"
        lines.append(f"  reload       {outcome['url']}: {state} ({outcome['detail']})")
    for warning in report.get("warnings", []):
        lines.append(f"  warning      {warning}")
    if report.get("report_path"):
        lines.append(f"  report       {report['report_path']}")
    lines.append(
        f"  time         {report.get('seconds', 0):.1f} s, exit status {report['exit_code']}"
    )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="mt-retrain",
        description="Fine-tune (or retrain) on new parallel data; promote the candidate only "
        "if its dev BLEU is no worse than the current model's. See docs/retraining.md.",
    )
    parser.add_argument("--models-root", type=Path, required=True, help="versions/, current")
    parser.add_argument("--base-model", type=Path, help="seeds ROOT/current when it is missing")
    parser.add_argument("--init-only", action="store_true", help="only seed current, then exit")
    parser.add_argument("--data", type=Path, help="new pairs: train.en/train.vi (or .gz)")
    parser.add_argument("--dev-data", type=Path, help="dev set dir (tst2012.*; default: --data)")
    parser.add_argument("--mix-original", type=Path, help="original corpus dir (train.*)")
    parser.add_argument(
        "--mix-ratio", type=float, default=1.0, help="original pairs per new pair (default 1)"
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="TOML recipe (default configs/finetune.toml; tiny.toml with --from-scratch)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a recipe value (repeatable), e.g. --set train.max_steps=200",
    )
    parser.add_argument("--from-scratch", action="store_true", help="new tokenizers and weights")
    parser.add_argument(
        "--max-bleu-drop",
        type=float,
        default=0.0,
        help="promote if candidate >= current - this (default 0: no worse)",
    )
    parser.add_argument("--beam", type=int, default=1, help="dev decoding beam (1 = greedy)")
    parser.add_argument("--dev-limit", type=int, default=0, help="first N dev pairs (0 = all)")
    parser.add_argument(
        "--device", default=os.environ.get("MT_DEVICE", "auto"), help="auto, cpu, cuda, cuda:N"
    )
    parser.add_argument("--max-batch-tokens", type=int, default=4096, help="for dev decoding")
    parser.add_argument("--version", help="name of the new version (default: UTC time + -ft)")
    parser.add_argument("--dry-run", action="store_true", help="train and score, never promote")
    parser.add_argument("--discard-rejected", action="store_true", help="delete, don't keep")
    parser.add_argument(
        "--reload-url",
        action="append",
        default=[],
        metavar="URL",
        help="service to POST /admin/reload after promotion (repeatable)",
    )
    parser.add_argument(
        "--admin-token",
        default=os.environ.get("MT_ADMIN_TOKEN") or None,
        help="bearer token for the reload (default: $MT_ADMIN_TOKEN)",
    )
    parser.add_argument(
        "--reload-model-dir", help="model_dir to send (default: ROOT/current, absolute)"
    )
    parser.add_argument("--reload-timeout", type=float, default=300.0, help="seconds per try")
    parser.add_argument("--reload-attempts", type=int, default=3, help="tries per service")
    parser.add_argument("--work-dir", type=Path, help="runs in progress (default ROOT/.work)")
    parser.add_argument("--keep-work", action="store_true", help="keep the training run dir")
    parser.add_argument("--report", type=Path, help="JSON report (default ROOT/reports/V.json)")
    return parser.parse_args(argv)


def _report_path(args: argparse.Namespace, report: dict[str, Any]) -> Path | None:
    if args.report is not None:
        return Path(args.report)
    if report.get("version") and report.get("status") != "initialised":
        return ModelsRoot(args.models_root).reports / f"{report['version']}.json"
    return None


def save_report(args: argparse.Namespace, report: dict[str, Any]) -> None:
    """Write the JSON report (atomically) where it belongs, if the run has one."""
    path = _report_path(args, report)
    if path is not None:
        report["report_path"] = str(path)
        _write_atomically(path, json.dumps(report, indent=2, ensure_ascii=False) + "\n")


def _raise_terminated(signum: int, _frame: Any) -> None:
    raise Terminated(signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    started = time.monotonic()
    report: dict[str, Any] = {
        "status": "error",
        "started_at": _now().isoformat(timespec="seconds"),
        "warnings": [],
    }
    # A kill (docker stop, systemd, Ctrl-C) unwinds like an error: temporary copies and the
    # work directory are removed by the finally blocks, and the report says what happened.
    previous = {}
    if threading.current_thread() is threading.main_thread():  # signals go to the main thread
        previous = {
            signum: signal.signal(signum, _raise_terminated)
            for signum in (signal.SIGTERM, signal.SIGHUP)
        }
    try:
        code = run(args, report)
    except (Terminated, KeyboardInterrupt) as exc:
        stage = report.get("status")
        report.update(status="interrupted", error=str(exc) or "interrupted", stage=stage)
        code = EXIT_FAILED
    except (
        RetrainError,
        ConfigError,
        ParallelDataError,
        ModelFileError,
        EvaluationError,
        FileNotFoundError,
    ) as exc:
        report.update(status="error", error=str(exc))
        code = EXIT_USAGE
    except Exception as exc:
        logger.exception("mt-retrain failed")
        report.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        code = EXIT_FAILED
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    report.update(
        exit_code=code,
        finished_at=_now().isoformat(timespec="seconds"),
        seconds=round(time.monotonic() - started, 1),
    )
    save_report(args, report)
    # one account of the run, errors included (an error is said once, on stderr)
    print(format_summary(report), file=sys.stderr if code else sys.stdout)
    return code


if __name__ == "__main__":
    sys.exit(main())
