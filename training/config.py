"""Training recipes: a TOML file whose sections map onto small dataclasses.

A recipe looks like::

    [model]       # fields of model.nn.config.ModelConfig, minus the vocabulary sizes
    cell = "lstm"
    hidden_size = 512

    [tokenizer]   # SentencePiece vocabularies (or existing models to reuse)
    source_vocab_size = 8000
    target_vocab_size = 8000

    [data]        # which files, how they are cleaned and filtered
    max_source_tokens = 80

    [train]       # optimisation and evaluation
    batch_tokens = 4096
    lr = 0.001

    [[corpora]]   # optional: further corpora mixed in, each with its own dev set
    name = "software"
    dir = "data/software"
    weight = 0.3

``--set section.key=value`` overrides any field; the value is parsed as a TOML value
(``--set train.lr=5e-4``, ``--set model.cell='"gru"'`` or simply ``--set model.cell=gru``: a
value that is not valid TOML is taken as a string). Unknown sections or keys are an error, so a
typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model.nn.config import ConfigError, ModelConfig


@dataclass(frozen=True)
class TokenizerConfig:
    """One SentencePiece model per language; ``source_model``/``target_model`` reuse files."""

    source_vocab_size: int = 8000
    target_vocab_size: int = 8000
    model_type: str = "unigram"
    source_model: str | None = None
    target_model: str | None = None
    # SentencePiece sees at most this many sentences per side (it samples them anyway).
    max_training_sentences: int = 2_000_000


@dataclass(frozen=True)
class DataConfig:
    """Corpus files (relative to ``--data``), cleaning and length filtering.

    ``source_lang`` and ``target_lang`` (ISO 639-1) choose the direction: the files read
    (``train.vi`` as the source for ``source_lang = "vi"``, in every corpus), the Moses rules
    that detokenize them and tokenize dev BLEU, and the languages the model names in its
    metadata (:func:`model.store.languages.model_pair`).
    """

    train_prefix: str = "train"
    dev_prefix: str = "tst2012"
    source_lang: str = "en"
    target_lang: str = "vi"
    # The Stanford IWSLT files are Moses-tokenized with XML escapes: undo both so the model
    # learns (and later receives) natural text.
    moses_detokenize: bool = True
    max_source_tokens: int = 100
    max_target_tokens: int = 100
    # Drop pairs whose subword lengths differ by more than this factor (misalignments).
    max_length_ratio: float = 4.0
    # Use only the first N training pairs (smoke runs); 0 = all.
    max_train_pairs: int = 0
    # Evaluate on the first N dev pairs only (cheaper BLEU on CPU); 0 = all.
    max_dev_pairs: int = 0
    # Replace URLs, e-mail addresses and numbers found on both sides of a pair with the same
    # placeholder (model.text.protect), and make the placeholders whole tokenizer pieces.
    protect_spans: bool = True
    # Vietnamese sources only: the share of training source words written without their
    # diacritics (tone and vowel marks, đ as d), as users type when they skip them; the same
    # words for the same seed (training.tones). 0 = off.
    strip_tones_prob: float = 0.0
    # Vietnamese sources only: the share of training source sentences written entirely
    # without diacritics, as typed on a keyboard without Vietnamese. 0 = off.
    strip_tones_sentence_prob: float = 0.0

    @property
    def corpus_files(self) -> list[tuple[str, str]]:
        """(prefix, language) of every file a run reads: train and dev, both sides."""
        prefixes, langs = (self.train_prefix, self.dev_prefix), (self.source_lang, self.target_lang)
        return [(prefix, lang) for prefix in prefixes for lang in langs]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, evaluation and stopping.

    Learning rate: linear warmup over ``warmup_steps`` to ``lr``, then cosine decay to
    ``lr * min_lr_ratio`` at the last step (``max_steps``, or ``max_epochs`` x the epoch's
    batch count when ``max_steps`` is 0). Cosine decay suits a fixed compute budget: the
    model spends its last steps at a small learning rate, which is worth about a BLEU point
    over a constant rate at the same step count. With ``max_minutes`` the decay follows
    whichever budget (steps or time) runs out first, so a time-boxed run ends annealed.
    """

    seed: int = 1234
    batch_tokens: int = 4096  # padded tokens per batch per process: n_sentences x max(len)
    lr: float = 1e-3
    min_lr_ratio: float = 0.05
    warmup_steps: int = 500
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.98
    max_epochs: int = 20
    max_steps: int = 0  # 0 = bounded by max_epochs only
    max_minutes: float = 0.0  # stop (after an evaluation) once this much time is used; 0 = off
    label_smoothing: float = 0.1
    clip: float = 1.0
    eval_every: int = 0  # steps between evaluations; 0 = once per epoch
    patience: int = 0  # evaluations without a new best dev BLEU before stopping; 0 = off
    eval_max_len_ratio: float = 2.0  # greedy decoding stops at ratio x source length + 10
    eval_batch_sentences: int = 128
    bf16: bool = True  # autocast to bfloat16 on CUDA
    # autocast to bfloat16 for training steps on CPU too (fp32 master weights; needs a CPU
    # with native bf16, e.g. AVX-512 BF16 or AMX, to be faster)
    bf16_cpu: bool = False
    # SentencePiece subword regularization: each training batch is re-encoded with a sampled
    # segmentation (smoothing alpha; 0 = off, the best segmentation, read from the cache)
    subword_alpha: float = 0.0
    # keep the model of each of the last N evaluations in checkpoints/ (for mt-average)
    keep_checkpoints: int = 0
    device: str = "auto"
    num_threads: int = 0  # torch CPU threads; 0 = leave torch's default


@dataclass(frozen=True)
class CorpusConfig:
    """A further corpus mixed into the training data, with its own dev set (``[[corpora]]``).

    ``weight``: its share of each epoch against the main corpus (``--data``), whose weight is
    1: an epoch holds ``round(weight x main training pairs)`` of its pairs, drawn without
    repeats while it has enough and repeated whole when it has fewer; 0 trains on none of
    them and only scores its dev set (a baseline for the same table). Its dev set
    (``dev_prefix``) is scored at every evaluation as ``dev_bleu_<name>`` and
    ``dev_loss_<name>``; the best model is still chosen on the main dev set. An empty
    ``dev_prefix`` means it has none (a distilled corpus: its sources are the main corpus's).
    """

    name: str = ""
    dir: str = ""  # environment variables are expanded ($MT_CORPUS_DIR/software)
    weight: float = 1.0
    train_prefix: str = "train"
    dev_prefix: str = "dev"
    moses_detokenize: bool = False  # natural text; true for Moses-tokenized files
    max_dev_pairs: int = 0  # 0 = all


@dataclass(frozen=True)
class RunConfig:
    """A whole recipe. ``model`` is kept as a dict because the vocabulary sizes that complete
    a :class:`ModelConfig` are known only once the tokenizers exist."""

    model: dict[str, Any] = field(default_factory=dict)
    tokenizer: TokenizerConfig = TokenizerConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    corpora: tuple[CorpusConfig, ...] = ()

    def model_config(self, source_vocab_size: int, target_vocab_size: int) -> ModelConfig:
        return ModelConfig.from_dict(
            {
                **self.model,
                "source_vocab_size": source_vocab_size,
                "target_vocab_size": target_vocab_size,
            }
        )

    def to_dict(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "model": dict(self.model),
            "tokenizer": dataclasses.asdict(self.tokenizer),
            "data": dataclasses.asdict(self.data),
            "train": dataclasses.asdict(self.train),
        }
        if self.corpora:  # absent otherwise: a one-corpus recipe reads as it always did
            values["corpora"] = [dataclasses.asdict(corpus) for corpus in self.corpora]
        return values

    def replace(self, **sections: Any) -> RunConfig:
        return dataclasses.replace(self, **sections)


_SECTIONS: dict[str, type] = {
    "tokenizer": TokenizerConfig,
    "data": DataConfig,
    "train": TrainConfig,
}
_MODEL_FIELDS = {f.name for f in dataclasses.fields(ModelConfig)} - {
    "source_vocab_size",
    "target_vocab_size",
}


def _build_section(name: str, cls: type, values: dict[str, Any]) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"[{name}]: unknown setting(s) {', '.join(unknown)}")
    checked: dict[str, Any] = {}
    for key, value in values.items():
        default = getattr(cls(), key)
        # TOML writes 3 for a float field; accept ints where floats are expected, nothing looser.
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if default is not None and type(value) is not type(default):
            raise ConfigError(
                f"[{name}] {key} must be {type(default).__name__}, got {value!r} "
                f"({type(value).__name__})"
            )
        checked[key] = value
    return cls(**checked)


_CORPUS_NAME = re.compile(r"[a-z][a-z0-9_]*")


def _corpus_tables(values: dict[str, Any]) -> list[dict[str, Any]]:
    tables = values.get("corpora", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError("corpora must be an array of tables: [[corpora]]")
    return tables


def _corpora(values: dict[str, Any]) -> tuple[CorpusConfig, ...]:
    """The ``[[corpora]]`` tables, checked: a name usable in metric names, a folder, a
    weight of at least 0, each name once."""
    corpora = tuple(
        _build_section(f"corpora {n}", CorpusConfig, entry)
        for n, entry in enumerate(_corpus_tables(values), 1)
    )
    for corpus in corpora:
        if not _CORPUS_NAME.fullmatch(corpus.name):
            raise ConfigError(f"[[corpora]] name {corpus.name!r}: use a-z, 0-9 and _")
        if not corpus.dir:
            raise ConfigError(f"[[corpora]] {corpus.name}: dir is required")
        if corpus.weight < 0:
            raise ConfigError(f"[[corpora]] {corpus.name}: weight must be >= 0")
    names = [corpus.name for corpus in corpora]
    if len(set(names)) < len(names):
        raise ConfigError("[[corpora]]: each name may appear once")
    return corpora


_LANGUAGE = re.compile(r"[a-z]{2}")


def _check_data(data: DataConfig) -> None:
    """The direction (two different ISO 639-1 codes) and the tone stripping's share."""
    for key in ("source_lang", "target_lang"):
        if not _LANGUAGE.fullmatch(getattr(data, key)):
            raise ConfigError(f"[data] {key} must be an ISO 639-1 code such as en or vi")
    if data.source_lang == data.target_lang:
        raise ConfigError("[data] source_lang and target_lang must differ")
    for key in ("strip_tones_prob", "strip_tones_sentence_prob"):
        share = getattr(data, key)
        if not 0.0 <= share <= 1.0:
            raise ConfigError(f"[data] {key} must be between 0 and 1")
        if share > 0 and data.source_lang != "vi":
            raise ConfigError(f'[data] {key} needs a Vietnamese source (source_lang = "vi")')


def config_from_dict(values: dict[str, Any]) -> RunConfig:
    """Build and validate a :class:`RunConfig` from parsed TOML."""
    unknown = sorted(set(values) - {"model", "corpora", *_SECTIONS})
    if unknown:
        raise ConfigError(f"unknown section(s): {', '.join(unknown)}")
    model = dict(values.get("model", {}))
    bad = sorted(set(model) - _MODEL_FIELDS)
    if bad:
        raise ConfigError(f"[model]: unknown setting(s) {', '.join(bad)}")
    sections = {
        name: _build_section(name, cls, values.get(name, {})) for name, cls in _SECTIONS.items()
    }
    config = RunConfig(model=model, corpora=_corpora(values), **sections)
    _check_data(config.data)
    if config.train.subword_alpha > 0 and config.tokenizer.model_type not in {"unigram", "bpe"}:
        raise ConfigError(
            "[train] subword_alpha (sampled segmentations) needs a unigram or bpe tokenizer, "
            f"not {config.tokenizer.model_type!r}"
        )
    config.model_config(source_vocab_size=8, target_vocab_size=8)  # validates [model] early
    return config


def parse_override(assignment: str) -> tuple[list[str], Any]:
    """``"train.lr=5e-4"`` -> ``(["train", "lr"], 0.0005)``."""
    key, separator, raw = assignment.partition("=")
    if not separator or "." not in key:
        raise ConfigError(f"--set expects section.key=value, got {assignment!r}")
    try:
        value = tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        value = raw  # bare strings such as gru or /path/to/file
    return key.strip().split("."), value


def read_toml(path: Path, error: type[Exception] = ConfigError) -> dict[str, Any]:
    """A TOML file's values; a file that cannot be read or parsed raises ``error``, naming it."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: invalid TOML ({exc})") from exc


def parse_corpus_option(option: str) -> dict[str, Any]:
    """``"software=data/software:0.3"`` (``NAME=DIR[:WEIGHT]``) -> a ``[[corpora]]`` table."""
    name, separator, rest = option.partition("=")
    if not separator or not rest:
        raise ConfigError(f"--corpus expects NAME=DIR[:WEIGHT], got {option!r}")
    directory, _, weight = rest.rpartition(":")
    try:
        return {"name": name.strip(), "dir": directory, "weight": float(weight)}
    except ValueError:
        return {"name": name.strip(), "dir": rest}


def load_config(
    path: str | Path, overrides: list[str] | None = None, corpora: list[str] | None = None
) -> RunConfig:
    """Read a TOML recipe, apply ``section.key=value`` overrides and add the ``--corpus``
    options (:func:`parse_corpus_option`) to its ``[[corpora]]``."""
    path = Path(path)
    return config_with_overrides(read_toml(path), overrides, str(path), corpora)


def config_with_overrides(
    values: dict[str, Any],
    overrides: list[str] | None,
    origin: str,
    corpora: list[str] | None = None,
) -> RunConfig:
    """A recipe from parsed values (a TOML file's, or a run's recorded ``config.json``) with
    ``section.key=value`` overrides and ``--corpus`` options; errors name ``origin``."""
    values = {k: dict(v) if isinstance(v, dict) else v for k, v in values.items()}  # a copy
    for assignment in overrides or []:
        keys, value = parse_override(assignment)
        if len(keys) != 2:
            raise ConfigError(f"--set expects exactly section.key, got {'.'.join(keys)!r}")
        values.setdefault(keys[0], {})[keys[1]] = value
    if corpora:
        values["corpora"] = [*_corpus_tables(values), *map(parse_corpus_option, corpora)]
    try:
        return config_from_dict(values)
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from exc
