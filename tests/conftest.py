"""Shared fixtures: tiny seeded models built from small made-up data (no ../shared needed)."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import torch

from model.nn.config import ModelConfig
from model.nn.seq2seq import Seq2Seq
from model.store.checkpoint import save_model
from model.store.languages import pair_metadata
from model.text.tokenizer import EOS_ID, Tokenizers, train_tokenizer

torch.set_num_threads(1)

ENGLISH_WORDS = "i you we love like see the a big small house cat dog city country today".split()
VIETNAMESE_WORDS = (
    "tôi bạn chúng yêu thích thấy cái một lớn nhỏ nhà mèo chó thành phố hôm nay".split()
)


def make_sentences(words: list[str], count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(words) for _ in range(rng.randint(2, 9))) for _ in range(count)]


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Async tests and fixtures run on asyncio, the server's loop (a module may override it)."""
    return "asyncio"


@pytest.fixture(scope="session")
def tiny_tokenizers() -> Tokenizers:
    """Byte-fallback SentencePiece models (>= 260 pieces: 256 bytes + specials + a few more)."""
    return Tokenizers(
        source=train_tokenizer(make_sentences(ENGLISH_WORDS, 400, 1), vocab_size=300),
        target=train_tokenizer(make_sentences(VIETNAMESE_WORDS, 400, 2), vocab_size=300),
    )


def tiny_config(tokenizers: Tokenizers, **overrides: object) -> ModelConfig:
    values: dict[str, object] = {
        "source_vocab_size": tokenizers.source.vocab_size,
        "target_vocab_size": tokenizers.target.vocab_size,
        "embedding_size": 16,
        "hidden_size": 16,
        "encoder_layers": 1,
        "decoder_layers": 1,
        "dropout": 0.0,
        "embedding_dropout": 0.0,
    }
    values.update(overrides)
    return ModelConfig(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def peaked_model(tiny_tokenizers: Tokenizers) -> Seq2Seq:
    """Weights large enough for peaked, source-dependent distributions, and an EOS bias that
    ends most hypotheses within a few steps: beam search then has real choices to make
    (hypotheses of different lengths; beam finds higher scores than greedy)."""
    torch.manual_seed(0)
    model = Seq2Seq(tiny_config(tiny_tokenizers)).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.uniform_(-1.0, 1.0)
        model.decoder.output.bias[EOS_ID] = 2.5
    return model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizers: Tokenizers) -> Path:
    """A saved, untrained, seeded tiny model directory (read-only by convention)."""
    torch.manual_seed(0)
    model = Seq2Seq(tiny_config(tiny_tokenizers))
    directory = tmp_path_factory.mktemp("models") / "tiny"
    save_model(
        directory,
        model,
        tiny_tokenizers,
        metadata={"version": "tiny-test", "trained_at": "2026-01-01T00:00:00Z"},
    )
    return directory


def save_vi_en(tokenizers: Tokenizers, directory: Path, version: str = "tiny-vi-en") -> Path:
    """A tiny seeded model marked as Vietnamese→English (the tokenizers swapped)."""
    swapped = Tokenizers(source=tokenizers.target, target=tokenizers.source)
    torch.manual_seed(3)
    metadata = {"version": version, **pair_metadata(("vi", "en"))}
    return save_model(directory, Seq2Seq(tiny_config(swapped)), swapped, metadata=metadata)


@pytest.fixture(scope="session")
def vi_en_dir(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizers: Tokenizers) -> Path:
    """The Vietnamese→English partner of ``tiny_model_dir`` (read-only by convention)."""
    return save_vi_en(tiny_tokenizers, tmp_path_factory.mktemp("models") / "vi-en")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The IWSLT'15 data, or a skip saying where it was looked for."""
    default = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "iwslt15"
    directory = Path(os.environ.get("MT_DATA_DIR", default))
    if not (directory / "train.en").is_file():
        pytest.skip(f"IWSLT'15 data not found at {directory} (set MT_DATA_DIR)")
    return directory
