"""The model's architecture, in one dataclass that round-trips through ``config.json``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, get_args

from model.nn.recurrent import CellType, GRUVariant

Implementation = Literal["fused", "reference"]
AttentionType = Literal["dot", "general", "additive"]


# Upper bounds on every size, checked before anything is built: a config.json (possibly
# hand-edited or hostile) must not make a loader allocate gigabytes before it is rejected.
# They are far above any model this project trains (the recipes use 6-32K vocabularies, 512-1024
# wide, 2-4 layers).
MAX_VOCAB_SIZE = 1 << 18
MAX_WIDTH = 4096
MAX_LAYERS = 16
UPPER_BOUNDS = {
    "source_vocab_size": MAX_VOCAB_SIZE,
    "target_vocab_size": MAX_VOCAB_SIZE,
    "embedding_size": MAX_WIDTH,
    "hidden_size": MAX_WIDTH,
    "encoder_layers": MAX_LAYERS,
    "decoder_layers": MAX_LAYERS,
}


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range."""


DROPOUT_SETTINGS = ("dropout", "embedding_dropout")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a :class:`model.nn.seq2seq.Seq2Seq`.

    ``cell`` picks the tutorial's recurrence; ``implementation`` picks fused cuDNN kernels
    (fast) or the reference cells (readable, slow). ``gru_variant="tutorial"`` (Cho et al.) is
    available with the reference implementation only: no fused kernel computes it.

    ``hidden_size`` is the decoder's width. A bidirectional encoder uses ``hidden_size // 2`` per
    direction, so its concatenated final states initialise the decoder without a bridge layer.
    """

    source_vocab_size: int
    target_vocab_size: int
    cell: CellType = "lstm"
    implementation: Implementation = "fused"
    gru_variant: GRUVariant = "cudnn"
    embedding_size: int = 512
    hidden_size: int = 512
    encoder_layers: int = 2
    decoder_layers: int = 2
    bidirectional: bool = True
    attention: AttentionType = "general"
    input_feeding: bool = True
    dropout: float = 0.3
    embedding_dropout: float = 0.1
    tie_target_embeddings: bool = True

    def __post_init__(self) -> None:
        for name, literal in (
            ("cell", CellType),
            ("implementation", Implementation),
            ("gru_variant", GRUVariant),
            ("attention", AttentionType),
        ):
            allowed = get_args(literal)
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        for name, largest in UPPER_BOUNDS.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
            if value > largest:
                raise ConfigError(f"{name} must be at most {largest}, got {value}")
        for name in ("bidirectional", "input_feeding", "tie_target_embeddings"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, got {getattr(self, name)!r}")
        for name in DROPOUT_SETTINGS:
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 <= value < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {value!r}")
        if self.gru_variant == "tutorial" and self.cell == "gru" and self.implementation == "fused":
            raise ConfigError(
                "gru_variant='tutorial' needs implementation='reference': cuDNN only computes "
                "its own GRU variant (reset gate after the matrix product)"
            )
        if self.bidirectional and self.hidden_size % 2:
            raise ConfigError("a bidirectional encoder needs an even hidden_size")
        if self.encoder_layers != self.decoder_layers:
            raise ConfigError(
                "encoder_layers must equal decoder_layers: the encoder's final states "
                "initialise the decoder layer by layer"
            )
        if self.tie_target_embeddings and self.embedding_size != self.hidden_size:
            raise ConfigError("tie_target_embeddings needs embedding_size == hidden_size")

    @property
    def encoder_hidden_size(self) -> int:
        """Width of one encoder direction."""
        return self.hidden_size // 2 if self.bidirectional else self.hidden_size

    def same_architecture(self, other: ModelConfig) -> bool:
        """Equal but for the dropout rates, which shape a training run, not the weights."""
        neutral = dict.fromkeys(DROPOUT_SETTINGS, 0.0)
        return self.replace(**neutral) == other.replace(**neutral)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelConfig:
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown model setting(s): {', '.join(unknown)}")
        try:
            return cls(**values)
        except TypeError as exc:  # a required field is missing
            raise ConfigError(str(exc)) from exc

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)
