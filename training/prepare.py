"""Data and tokenizer preparation for a training run: clean, protect spans, train (or load)
the tokenizers, encode and filter the training pairs and the dev set.

Everything slow is cached under the run's cache directory: cleaned and encoded corpora
(:mod:`training.data`) and freshly trained tokenizers, keyed on the cleaned corpus's digest
(a hash of the whole corpus files) and the tokenizer settings.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from model.evaluation import moses_tokenize
from model.nn.config import ConfigError
from model.text.protect import PLACEHOLDERS
from model.text.tokenizer import SubwordTokenizer, Tokenizers, train_tokenizer
from training import distributed
from training.config import CorpusConfig, RunConfig
from training.data import (
    CleanCorpus,
    EncodedCorpus,
    FilterReport,
    clean_corpus,
    encode_corpus,
    filter_pairs,
    find_corpus_file,
    protect_corpus,
    read_lines,
)
from training.mixing import MixedText, corpus_dir, mix_corpora
from training.tones import strip_tones

logger = logging.getLogger("training")


@dataclass(frozen=True)
class DevSet:
    """The development set: encoded pairs for the loss, text for BLEU."""

    corpus: EncodedCorpus
    references_tokenized: list[str]  # the Moses-tokenized reference lines, as in the file
    originals: list[tuple[str, ...]]  # each source's protected spans, by placeholder


@dataclass
class RunData:
    """Everything a run trains and evaluates on."""

    train: EncodedCorpus
    dev: DevSet
    tokenizers: Tokenizers
    train_text: CleanCorpus  # the text of ``train``, pair for pair (for sampled encodings)
    info: dict[str, Any] = field(default_factory=dict)
    corpus_devs: dict[str, DevSet] = field(default_factory=dict)  # [[corpora]] dev sets


def _train_tokenizers(config: RunConfig, sources: list[str], targets: list[str]) -> Tokenizers:
    settings = config.tokenizer
    limit = settings.max_training_sentences
    symbols = PLACEHOLDERS if config.data.protect_spans else ()
    logger.info(
        "training SentencePiece (%s) tokenizers: %d source / %d target pieces",
        settings.model_type,
        settings.source_vocab_size,
        settings.target_vocab_size,
    )
    return Tokenizers(
        source=train_tokenizer(
            (s for s in sources[:limit] if s),
            settings.source_vocab_size,
            settings.model_type,
            user_defined_symbols=symbols,
        ),
        target=train_tokenizer(
            (t for t in targets[:limit] if t),
            settings.target_vocab_size,
            settings.model_type,
            user_defined_symbols=symbols,
        ),
    )


def tokenizer_cache_key(config: RunConfig, corpus: CleanCorpus) -> str:
    """The cache name of tokenizers trained on ``corpus`` with ``config``'s settings: the
    corpus digest (a hash of all its text, not of a sample) and the tokenizer settings."""
    parts = [config.to_dict()["tokenizer"], config.data.protect_spans, corpus.digest]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:20]


def resolve_tokenizers(
    config: RunConfig,
    corpus: CleanCorpus,
    existing: Tokenizers | None,
    cache_dir: Path | None,
) -> Tokenizers:
    """Existing tokenizers (resume / fine-tuning / config paths) or freshly trained ones.

    Freshly trained models are cached by (cleaned text, tokenizer settings): SentencePiece on
    133K sentences takes a minute, and a rerun of the same recipe should not pay it again.
    """
    if existing is not None:
        return existing
    settings = config.tokenizer
    if settings.source_model or settings.target_model:
        if not (settings.source_model and settings.target_model):
            raise ConfigError("[tokenizer] source_model and target_model must be given together")
        return Tokenizers(
            SubwordTokenizer.load(settings.source_model),
            SubwordTokenizer.load(settings.target_model),
        )
    sources, targets = corpus.sources, corpus.targets
    if cache_dir is None:
        return _train_tokenizers(config, sources, targets)
    key = tokenizer_cache_key(config, corpus)
    source_file, target_file = cache_dir / f"spm-{key}.src", cache_dir / f"spm-{key}.tgt"
    if source_file.is_file() and target_file.is_file():
        logger.info("tokenizers from cache %s", source_file.parent)
        return Tokenizers(SubwordTokenizer.load(source_file), SubwordTokenizer.load(target_file))
    tokenizers = _train_tokenizers(config, sources, targets)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tokenizers.source.save(source_file)
    tokenizers.target.save(target_file)
    return tokenizers


def clean_side(config: RunConfig, data_dir: Path, prefix: str, cache: Path | None) -> CleanCorpus:
    data = config.data
    return clean_corpus(
        find_corpus_file(data_dir, prefix, data.source_lang),
        find_corpus_file(data_dir, prefix, data.target_lang),
        data.source_lang,
        data.target_lang,
        data.moses_detokenize,
        cache,
    )


def protects_spans(config: RunConfig, existing: Tokenizers | None) -> bool:
    """``data.protect_spans``, unless the given tokenizers have no placeholder pieces."""
    protect = config.data.protect_spans
    if protect and existing is not None:
        protect = existing.source.has_pieces(PLACEHOLDERS)
        if not protect:
            logger.warning("span protection off: the given tokenizers have no placeholders")
    return protect


def _training_text(config: RunConfig, data_dir: Path, cache: Path | None) -> CleanCorpus:
    """The cleaned training pairs (the first ``data.max_train_pairs`` of them)."""
    data = config.data
    clean = clean_side(config, data_dir, data.train_prefix, cache)
    if data.max_train_pairs:
        clean = type(clean)(
            clean.sources[: data.max_train_pairs],
            clean.targets[: data.max_train_pairs],
            f"{clean.digest}-first{data.max_train_pairs}",
        )
    return clean


def _tones_stripped(config: RunConfig, corpus: CleanCorpus) -> CleanCorpus:
    """The training pairs with ``data.strip_tones_prob`` of the source words and
    ``data.strip_tones_sentence_prob`` of the source sentences written without diacritics
    (:mod:`training.tones`; a Vietnamese source only), seeded by the recipe."""
    words, sentences = config.data.strip_tones_prob, config.data.strip_tones_sentence_prob
    seed = config.train.seed
    if words <= 0 and sentences <= 0:
        return corpus
    stripped = strip_tones(corpus.sources, words, seed, sentence_probability=sentences)
    digest = f"{corpus.digest}-tones{words:g}-{seed}"
    if sentences > 0:
        digest += f"-sentences{sentences:g}"
    return CleanCorpus(stripped, corpus.targets, digest)


def _filtered_train(
    config: RunConfig, clean: CleanCorpus, tokenizers: Tokenizers, cache: Path | None
) -> tuple[EncodedCorpus, CleanCorpus, FilterReport]:
    """The encoded training pairs within the length limits, and their text."""
    data = config.data
    encoded = encode_corpus(clean, tokenizers.source, tokenizers.target, cache)
    kept, report = filter_pairs(
        encoded, data.max_source_tokens, data.max_target_tokens, data.max_length_ratio
    )
    logger.info("training data: %s", report.describe())
    train_corpus = encoded.select(kept) if report.dropped else encoded
    train_text = CleanCorpus(
        [clean.sources[int(i)] for i in kept],
        [clean.targets[int(i)] for i in kept],
        clean.digest,
    )
    return train_corpus, train_text, report


def _dev_set(
    config: RunConfig, data_dir: Path, cache: Path | None, tokenizers: Tokenizers, protect: bool
) -> DevSet:
    """The dev set, masked as at inference so dev BLEU sees what users get."""
    data = config.data
    dev_clean = clean_side(config, data_dir, data.dev_prefix, cache)
    references = read_lines(find_corpus_file(data_dir, data.dev_prefix, data.target_lang))
    return _encoded_dev(dev_clean, references, data.max_dev_pairs, cache, tokenizers, protect)


def _corpus_side(
    config: RunConfig, corpus: CorpusConfig, prefix: str, cache: Path | None
) -> CleanCorpus:
    """One side (``prefix``) of one of the recipe's ``[[corpora]]``, cleaned as it asks."""
    data = dataclasses.replace(config.data, moses_detokenize=corpus.moses_detokenize)
    return clean_side(config.replace(data=data), corpus_dir(corpus), prefix, cache)


def _mixed_training_text(config: RunConfig, main: CleanCorpus, cache: Path | None) -> MixedText:
    """The training text: ``main`` alone, or mixed with the recipe's ``[[corpora]]``."""
    extras = [
        (corpus, _corpus_side(config, corpus, corpus.train_prefix, cache))
        for corpus in config.corpora
    ]
    return mix_corpora(main, extras, config.train.seed)


def _corpus_devs(
    config: RunConfig, cache: Path | None, tokenizers: Tokenizers, protect: bool
) -> dict[str, DevSet]:
    """The dev set of each of the recipe's ``[[corpora]]``, by name, in the recipe's
    direction (``dev.vi`` the source for a Vietnamese source). Natural-text references are
    Moses-tokenized here with the target language's rules, as tokenized BLEU expects (the
    IWSLT files come tokenized)."""
    devs = {}
    for corpus in config.corpora:
        if not corpus.dev_prefix:
            continue  # a corpus with no dev set of its own (a distilled one)
        clean = _corpus_side(config, corpus, corpus.dev_prefix, cache)
        file = find_corpus_file(corpus_dir(corpus), corpus.dev_prefix, config.data.target_lang)
        references = read_lines(file)
        if not corpus.moses_detokenize:
            references = moses_tokenize(references, config.data.target_lang)
        devs[corpus.name] = _encoded_dev(
            clean, references, corpus.max_dev_pairs, cache, tokenizers, protect
        )
    return devs


def _encoded_dev(
    dev_clean: CleanCorpus,
    references: list[str],
    max_dev_pairs: int,
    cache: Path | None,
    tokenizers: Tokenizers,
    protect: bool,
) -> DevSet:
    """A dev set's text masked (as at inference) and encoded, and its references."""
    dev_originals: list[tuple[str, ...]] = [()] * len(dev_clean.sources)
    if protect:
        protected = protect_corpus(dev_clean, shared_only=False)
        dev_clean, dev_originals = protected.corpus, protected.originals
    dev_encoded = encode_corpus(dev_clean, tokenizers.source, tokenizers.target, cache)
    # Dev pairs are never length-filtered (BLEU must cover the whole set); only empty sources
    # are skipped, since there is nothing to translate.
    dev_keep = np.flatnonzero(dev_encoded.source.lengths > 0)
    if max_dev_pairs:
        dev_keep = dev_keep[:max_dev_pairs]
    return DevSet(
        dev_encoded.select(dev_keep),
        [references[int(i)] for i in dev_keep],
        [dev_originals[int(i)] for i in dev_keep],
    )


def prepare_data(
    config: RunConfig,
    data_dir: Path,
    cache_dir: Path | None,
    existing_tokenizers: Tokenizers | None = None,
) -> RunData:
    """Clean, protect spans, tokenize (training tokenizers if needed), encode and filter train
    and dev."""
    mixed = _mixed_training_text(config, _training_text(config, data_dir, cache_dir), cache_dir)
    train_clean = mixed.corpus
    protect = protects_spans(config, existing_tokenizers)
    if protect:
        train_clean = protect_corpus(train_clean, shared_only=True).corpus
    train_clean = _tones_stripped(config, train_clean)  # after masking: spans keep their marks
    tokenizers = resolve_tokenizers(config, train_clean, existing_tokenizers, cache_dir)
    train_corpus, train_text, report = _filtered_train(config, train_clean, tokenizers, cache_dir)
    dev = _dev_set(config, data_dir, cache_dir, tokenizers, protect)
    corpus_devs = _corpus_devs(config, cache_dir, tokenizers, protect)
    info: dict[str, Any] = {
        "train_pairs": len(train_corpus),
        "train_filter": report.describe(),
        "dev_pairs": len(dev.corpus),
        "source_vocab_size": tokenizers.source.vocab_size,
        "target_vocab_size": tokenizers.target.vocab_size,
        "protect_spans": protect,
        "languages": [config.data.source_lang, config.data.target_lang],
    }
    if config.corpora:
        info["mixed_pairs"] = mixed.pairs_per_corpus  # before the length filter
        info["corpus_dev_pairs"] = {name: len(d.corpus) for name, d in corpus_devs.items()}
    return RunData(train_corpus, dev, tokenizers, train_text, info, corpus_devs)


def prepare_data_on_all_ranks(
    config: RunConfig,
    data_dir: Path,
    cache: Path,
    existing: Tokenizers | None,
    context: distributed.DistributedContext,
) -> RunData:
    """Rank 0 prepares the data (training tokenizers if needed, filling the cache); the other
    ranks then receive its tokenizers and prepare the same data, mostly from the cache."""
    if not context.enabled:
        return prepare_data(config, data_dir, cache, existing)
    data = prepare_data(config, data_dir, cache, existing) if context.is_main else None
    source = distributed.broadcast_bytes(
        data.tokenizers.source.model_proto if data is not None else None, context
    )
    target = distributed.broadcast_bytes(
        data.tokenizers.target.model_proto if data is not None else None, context
    )
    if data is not None:
        return data
    return prepare_data(
        config, data_dir, cache, Tokenizers(SubwordTokenizer(source), SubwordTokenizer(target))
    )
