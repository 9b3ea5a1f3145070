"""The data of one retraining run: the training directory the trainer reads (new pairs plus a
sample of the original corpus against forgetting) and the dev set both models are scored on."""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from pathlib import Path

from model.evaluation import looks_moses_tokenized, moses_detokenize
from training.config import DataConfig
from training.data import ParallelDataError, find_corpus_file, read_parallel


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
    raise ParallelDataError(f"no dev set ({names}, plain or .gz) in {looked}: pass --dev-data DIR")


def _sample_original(
    mix_dir: Path, settings: DataConfig, wanted: int, seed: int
) -> tuple[list[str], list[str]]:
    """``wanted`` aligned pairs (at most the whole corpus) of ``mix_dir``'s training corpus,
    drawn without repeats with ``seed``, in corpus order."""
    sources, targets = read_parallel(
        find_corpus_file(mix_dir, settings.train_prefix, settings.source_lang),
        find_corpus_file(mix_dir, settings.train_prefix, settings.target_lang),
    )
    count = min(len(sources), wanted)
    picked = sorted(random.Random(seed).sample(range(len(sources)), count))
    return [sources[i] for i in picked], [targets[i] for i in picked]


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
        extra_sources, extra_targets = _sample_original(
            mix_dir, settings, round(mix_ratio * len(sources)), seed
        )
        sampled = len(extra_sources)
        for lang, lines in (
            (source_lang, sources + extra_sources),
            (target_lang, targets + extra_targets),
        ):
            text = "".join(line + "\n" for line in lines)
            (directory / f"{prefix}.{lang}").write_text(text, encoding="utf-8")
    else:
        _link(new_source, directory)
        _link(new_target, directory)
    return PreparedData(
        directory=directory,
        new_pairs=len(sources),
        original_pairs=sampled,
        dev_source=_link(dev_source, directory),
        dev_reference=_link(dev_reference, directory),
    )


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
