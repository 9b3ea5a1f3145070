"""The encoder–decoder contract: forward equals looping decode_step; padding changes nothing."""

import pytest
import torch

from model.nn.config import ConfigError, ModelConfig
from model.nn.seq2seq import Seq2Seq
from model.text.tokenizer import PAD_ID

VOCAB_SRC, VOCAB_TGT = 30, 25


def build(**overrides) -> Seq2Seq:
    torch.manual_seed(0)
    values = {
        "source_vocab_size": VOCAB_SRC,
        "target_vocab_size": VOCAB_TGT,
        "embedding_size": 12,
        "hidden_size": 12,
        "encoder_layers": 2,
        "decoder_layers": 2,
        "dropout": 0.0,
        "embedding_dropout": 0.0,
    }
    values.update(overrides)
    return Seq2Seq(ModelConfig(**values)).eval()


def random_batch(lengths: list[int], vocab: int, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    batch = torch.full((len(lengths), max(lengths)), PAD_ID)
    for row, length in enumerate(lengths):
        batch[row, :length] = torch.randint(4, vocab, (length,), generator=generator)
    return batch


VARIANTS = [
    {"cell": cell, "implementation": impl, "attention": attention}
    for cell in ("rnn", "lstm", "gru")
    for impl in ("fused", "reference")
    for attention in ("dot", "general", "additive")
] + [
    {"cell": "gru", "implementation": "reference", "gru_variant": "tutorial"},
    {"cell": "lstm", "input_feeding": False},
    {"cell": "lstm", "bidirectional": False, "tie_target_embeddings": False},
]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(map(str, v.values())))
def test_forward_equals_looped_decode_step(variant) -> None:
    model = build(**variant)
    src_lengths = torch.tensor([7, 3, 5])
    src = random_batch(src_lengths.tolist(), VOCAB_SRC)
    tgt_in = random_batch([6, 6, 6], VOCAB_TGT, seed=2)
    with torch.no_grad():
        logits = model(src, src_lengths, tgt_in)
        encoder_output = model.encode(src, src_lengths)
        state = model.initial_state(encoder_output)
        steps = []
        for t in range(tgt_in.size(1)):
            log_probs, state, attention = model.decode_step(tgt_in[:, t], state, encoder_output)
            steps.append(log_probs)
            assert attention.shape == (3, 7)
            torch.testing.assert_close(attention.sum(-1), torch.ones(3))
            assert (attention[1, 3:] == 0).all(), "attention must ignore padding"
    assert logits.shape == (3, 6, VOCAB_TGT)
    expected = torch.log_softmax(logits, dim=-1)
    torch.testing.assert_close(torch.stack(steps, 1), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("implementation", ["fused", "reference"])
def test_padding_never_changes_real_positions(cell, implementation) -> None:
    model = build(cell=cell, implementation=implementation)
    src_lengths = torch.tensor([4, 6])
    src = random_batch(src_lengths.tolist(), VOCAB_SRC)
    tgt_in = random_batch([5, 5], VOCAB_TGT, seed=3)
    with torch.no_grad():
        batched = model(src, src_lengths, tgt_in)
        alone = model(src[:1, :4], src_lengths[:1], tgt_in[:1])
        padded_more = torch.cat([src, torch.full((2, 5), PAD_ID)], dim=1)
        wider = model(padded_more, src_lengths, tgt_in)
    torch.testing.assert_close(batched[:1], alone, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(wider, batched, rtol=1e-5, atol=1e-5)


def test_reorder_selects_batch_rows() -> None:
    model = build()
    src_lengths = torch.tensor([3, 5])
    src = random_batch(src_lengths.tolist(), VOCAB_SRC)
    with torch.no_grad():
        encoder_output = model.encode(src, src_lengths)
        state = model.initial_state(encoder_output)
        _, state, _ = model.decode_step(torch.tensor([5, 6]), state, encoder_output)
        index = torch.tensor([1, 1, 0])
        enc3 = model.reorder_encoder_output(encoder_output, index)
        log_probs3, _, _ = model.decode_step(
            torch.tensor([7, 7, 8]), model.reorder(state, index), enc3
        )
        log_probs2, _, _ = model.decode_step(torch.tensor([8, 7]), state, encoder_output)
    torch.testing.assert_close(log_probs3[0], log_probs2[1])
    torch.testing.assert_close(log_probs3[1], log_probs2[1])
    torch.testing.assert_close(log_probs3[2], log_probs2[0])


def test_tied_embeddings_share_storage() -> None:
    model = build(tie_target_embeddings=True)
    assert model.decoder.output.weight is model.decoder.embedding.weight


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"cell": "transformer"}, "cell must be one of"),
        ({"implementation": "fused", "cell": "gru", "gru_variant": "tutorial"}, "reference"),
        ({"hidden_size": 13}, "even hidden_size"),
        ({"dropout": 1.5}, "dropout"),
        ({"encoder_layers": 2, "decoder_layers": 1}, "encoder_layers"),
        ({"embedding_size": 8}, "tie_target_embeddings"),
    ],
)
def test_invalid_configs_are_rejected(overrides, message) -> None:
    values = {
        "source_vocab_size": 10,
        "target_vocab_size": 10,
        "embedding_size": 12,
        "hidden_size": 12,
    }
    values.update(overrides)
    with pytest.raises(ConfigError, match=message):
        ModelConfig(**values)


def test_config_round_trip_rejects_unknown_keys() -> None:
    config = ModelConfig(source_vocab_size=10, target_vocab_size=11)
    assert ModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="unknown model setting"):
        ModelConfig.from_dict({**config.to_dict(), "layers": 3})
