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

``--set section.key=value`` overrides any field; the value is parsed as a TOML value
(``--set train.lr=5e-4``, ``--set model.cell='"gru"'`` or simply ``--set model.cell=gru``: a
value that is not valid TOML is taken as a string). Unknown sections or keys are an error, so a
typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
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
    """Corpus files (relative to ``--data``), cleaning and length filtering."""

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
class RunConfig:
    """A whole recipe. ``model`` is kept as a dict because the vocabulary sizes that complete
    a :class:`ModelConfig` are known only once the tokenizers exist."""

    model: dict[str, Any] = field(default_factory=dict)
    tokenizer: TokenizerConfig = TokenizerConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()

    def model_config(self, source_vocab_size: int, target_vocab_size: int) -> ModelConfig:
        return ModelConfig.from_dict(
            {
                **self.model,
                "source_vocab_size": source_vocab_size,
                "target_vocab_size": target_vocab_size,
            }
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": dict(self.model),
            "tokenizer": dataclasses.asdict(self.tokenizer),
            "data": dataclasses.asdict(self.data),
            "train": dataclasses.asdict(self.train),
        }

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


def config_from_dict(values: dict[str, Any]) -> RunConfig:
    """Build and validate a :class:`RunConfig` from parsed TOML."""
    unknown = sorted(set(values) - {"model", *_SECTIONS})
    if unknown:
        raise ConfigError(f"unknown section(s): {', '.join(unknown)}")
    model = dict(values.get("model", {}))
    bad = sorted(set(model) - _MODEL_FIELDS)
    if bad:
        raise ConfigError(f"[model]: unknown setting(s) {', '.join(bad)}")
    sections = {
        name: _build_section(name, cls, values.get(name, {})) for name, cls in _SECTIONS.items()
    }
    config = RunConfig(model=model, **sections)
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


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Read a TOML recipe and apply ``section.key=value`` overrides."""
    path = Path(path)
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from exc
    for assignment in overrides or []:
        keys, value = parse_override(assignment)
        if len(keys) != 2:
            raise ConfigError(f"--set expects exactly section.key, got {'.'.join(keys)!r}")
        values.setdefault(keys[0], {})[keys[1]] = value
    try:
        return config_from_dict(values)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
