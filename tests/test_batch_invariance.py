"""A sentence translates the same, bit for bit, alone and in any batch: offline (the Translator's
batches, and random batches of several sizes and padded widths), in a running search that
sentences join and leave, and in the service, with int8 and the shortlist on (the CPU
defaults), for a tiny model with peaked weights and for the bundled model; beam 1 still equals
greedy search. The pieces that make it so are checked one by one: int8
Linear layers with a fixed activation range (model/runtime/quantize.py), the LSTM token
tables (model/runtime/lstm_table.py), fixed-point attention (model/nn/fixed_point.py) and
each sentence's own shortlist normalisation (model/runtime/shortlist.py)."""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from model.nn.attention import Attention
from model.nn.encoder import EncoderOutput
from model.nn.fixed_point import exact_encoder_output, wide_softmax
from model.nn.seq2seq import Seq2Seq
from model.runtime.lstm_table import TokenTableEncoder, TokenTableLstm
from model.runtime.quantize import FixedRangeLinear, quantize_int8
from model.runtime.shortlist import SHORTLIST_FILE, Shortlist, ShortlistedModel
from model.search.decode import beam_search, greedy_search
from model.search.options import SearchOptions
from model.store.checkpoint import save_model
from model.store.locations import bundled_model_dir
from model.text.tokenizer import EOS_ID, Tokenizers
from model.translation import SentenceTranslation
from model.translator import Translator
from tests.conftest import ENGLISH_WORDS, make_sentences, tiny_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import invariance

# Sentences of 1 to 9 words, so every batch mixes lengths, and more of them than a CPU vector
# holds floats (a batch-wide elementwise op then has a vectorised part and a scalar tail).
SENTENCES = [*make_sentences(ENGLISH_WORDS, 40, 7), "dog", "", "the cat . the dog ."]
# Widths that are multiples of 32, as the bundled model's 384: a row then never straddles
# the vectorised part and the scalar tail of an elementwise op (model/nn/fixed_point.py).
WIDTHS = {"embedding_size": 32, "hidden_size": 32}
# Batches of these sizes, with random companions (more than a CPU vector holds floats, too).
BATCH_SIZES = (2, 3, 7, 16)
# A length penalty that is not 1, as the bundled model's: its powers must not depend on the batch.
DECODING = {"length_penalty": 1.2}

# Everyday sentences for the bundled model: short and long, names, numbers, a question.
EVERYDAY = [
    "Thank you very much.",
    "Where is the train station?",
    "My father was a teacher in a small village near the sea.",
    "I was born in Da Nang in 1985, and I moved to Hanoi when I was twelve.",
    "The internet changed everything.",
    "Call me at 0912 345 678 before 5 pm.",
    "Today I want to talk about climate change and what each of us can do about it.",
    "We need more water.",
    "She said that the meeting had been moved to next Tuesday because of the storm.",
    "Music makes people happy.",
    "Can you help me?",
    "Science can help us understand the world, but it cannot tell us what we should value.",
]


def outcome(translation: SentenceTranslation) -> list[tuple[str, float, list[str]]]:
    """What must not depend on the batch: every hypothesis's text, score and tokens."""
    return [(h.text, h.score, h.target_tokens) for h in translation.hypotheses]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizers: Tokenizers) -> Path:
    """A tiny model of the bundled architecture (one-layer bi-LSTM encoder, LSTM decoder
    without input feeding, general attention) with peaked weights, so that search has real
    choices to make, and a shortlist whose table gives each source word words of its own."""
    torch.manual_seed(5)
    model = Seq2Seq(tiny_config(tiny_tokenizers, input_feeding=False, **WIDTHS))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.uniform_(-1.0, 1.0)
        model.decoder.output.bias[EOS_ID] = 1.0
    directory = save_model(
        tmp_path_factory.mktemp("invariance") / "model",
        model,
        tiny_tokenizers,
        metadata={"version": "invariance-test", "trained_at": "2026-01-01T00:00:00Z"},
    )
    source_vocab, target_vocab = (
        tiny_tokenizers.source.vocab_size,
        tiny_tokenizers.target.vocab_size,
    )
    generator = torch.Generator().manual_seed(4)
    table = torch.randint(4, target_vocab, (source_vocab, 6), generator=generator)
    always = torch.tensor(sorted({EOS_ID, *range(4, 24)}))
    info = {"target_vocab_size": str(target_vocab), "source_vocab_size": str(source_vocab)}
    Shortlist(always, table, info).save(directory / SHORTLIST_FILE)
    return directory


@pytest.fixture(scope="module")
def translator(model_dir: Path) -> Translator:
    translator = Translator.from_dir(
        model_dir, device="cpu", quantize="int8", shortlist="on", **DECODING
    )
    assert translator.runner.precision == "int8" and translator.runner.shortlist is not None
    return translator


def alone(translator: Translator, sentences: list[str], options: SearchOptions) -> list[Any]:
    return [outcome(translator.translate_sentences([s], options)[0]) for s in sentences]


def streamed(
    translator: Translator, sentences: list[str], seed: int, options: SearchOptions
) -> list[Any]:
    """Sentences joining a running search a few at a time, in a shuffled order, one of them
    cancelled and sent again: as the service's batcher feeds it."""
    rng = random.Random(seed)
    stream = translator.open_stream(options)
    waiting = list(range(len(sentences)))
    rng.shuffle(waiting)
    handles: dict[int, int] = {}
    found: dict[int, Any] = {}
    cancelled = False
    while waiting or len(stream):
        for _ in range(rng.randint(0, 3)):
            if waiting:
                index = waiting.pop()
                [handle] = stream.add([translator.encode(sentences[index])])
                handles[handle] = index
        if not cancelled and len(handles) > 2:
            victim = next(iter(handles))
            stream.cancel([victim])
            waiting.append(handles.pop(victim))
            cancelled = True
        for handle, translation in stream.advance():
            found[handles.pop(handle)] = outcome(translation)
    return [found[index] for index in range(len(sentences))]


def mixed_batches(
    translator: Translator, sentences: list[str], options: SearchOptions, seed: int
) -> list[list[Any]]:
    """Each sentence searched inside batches of every size in :data:`BATCH_SIZES`, its
    companions drawn at random, so that every batch mixes lengths and pads to a width of its
    own (``Translator.search`` takes exactly the batch given): one result list per size."""
    rng = random.Random(seed)
    encoded = [translator.encode(sentence) for sentence in sentences]
    results = []
    for size in BATCH_SIZES:
        order = list(range(len(sentences)))
        rng.shuffle(order)
        found: dict[int, Any] = {}
        for start in range(0, len(order), size):
            batch = order[start : start + size]
            searched = translator.search([encoded[i] for i in batch], options)
            found.update(zip(batch, map(outcome, searched), strict=True))
        results.append([found[index] for index in range(len(sentences))])
    return results


def test_beam_of_one_equals_greedy_with_int8_and_the_shortlist(translator: Translator) -> None:
    """The same tokens and the same scores, bit for bit, from the two searches."""
    runner = translator.runner
    rows = [chunk for sentence in SENTENCES for chunk in translator.encode(sentence).chunks]
    src, lengths, max_len = runner.padded(rows)
    options = translator.options(1)
    with runner.running():
        greedy = greedy_search(runner.model, src, lengths, max_len, options)
        beam = beam_search(runner.model, src, lengths, max_len, options)
    assert beam.tokens == greedy.tokens
    assert beam.scores == greedy.scores


@pytest.mark.parametrize(("beam", "n_best"), [(1, 1), (5, 1), (5, 3)])
def test_offline_batches_translate_each_sentence_as_alone(
    translator: Translator, beam: int, n_best: int
) -> None:
    options = translator.options(beam, n_best)
    expected = alone(translator, SENTENCES, options)
    assert len({str(found) for found in expected}) > len(SENTENCES) // 2  # real variety
    # all in one batch, then in small batches of other companions, in reverse order
    forwards, backwards = list(range(len(SENTENCES))), list(reversed(range(len(SENTENCES))))
    for order, budget in ((forwards, 4096), (backwards, 64)):
        translator.max_batch_tokens = budget
        batch = [SENTENCES[i] for i in order]
        found = [outcome(t) for t in translator.translate_sentences(batch, options)]
        assert found == [expected[i] for i in order]
    translator.max_batch_tokens = 4096


@pytest.mark.parametrize(("beam", "n_best"), [(1, 1), (5, 2)])
def test_random_batches_and_a_running_search_translate_each_sentence_as_alone(
    translator: Translator, beam: int, n_best: int
) -> None:
    options = translator.options(beam, n_best)
    expected = alone(translator, SENTENCES, options)
    for found in mixed_batches(translator, SENTENCES, options, seed=beam):
        assert found == expected
    for seed in (1, 2):
        assert streamed(translator, SENTENCES, seed, options) == expected


def test_without_the_shortlist_batches_change_nothing_either(model_dir: Path) -> None:
    """The whole vocabulary is scored the same way (``MT_SHORTLIST=off``)."""
    translator = Translator.from_dir(
        model_dir, device="cpu", quantize="int8", shortlist="off", **DECODING
    )
    options = translator.options(4)
    expected = alone(translator, SENTENCES, options)
    found = [outcome(t) for t in translator.translate_sentences(SENTENCES, options)]
    assert found == expected
    assert streamed(translator, SENTENCES, 3, options) == expected


@pytest.mark.anyio
async def test_the_service_answers_the_same_alone_and_among_concurrent_clients(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through ``bench/invariance.py``: the app in-process, cache off, every sentence alone
    and then among concurrent clients, with alternatives."""
    int8_and_shortlist(monkeypatch)
    sentences = tmp_path / "sentences.txt"
    sentences.write_text("\n".join(SENTENCES), encoding="utf-8")
    options = {"model_dir": model_dir, "device": "cpu", "sentences": sentences, "limit": 40}
    for clients, beam in ((12, 4), (40, 1)):
        report = await invariance.measure(
            argparse.Namespace(**options, clients=clients, beam=beam, alternatives=min(beam, 2))
        )
        assert report["sentences"] == 40 and report["precision"] == "int8" and report["shortlist"]
        assert report["differ"] == 0, report["differing_lines"]


def int8_and_shortlist(monkeypatch: pytest.MonkeyPatch) -> None:
    """The service set to int8 and the shortlist, what ``auto`` chooses on every CPU with
    AVX2, set explicitly so that the test runs the same path on any machine."""
    monkeypatch.setenv("MT_QUANTIZE", "int8")
    monkeypatch.setenv("MT_SHORTLIST", "on")


# --------------------------------------------------------------------------- the pieces


def test_a_fixed_range_int8_row_is_the_same_in_any_batch() -> None:
    torch.manual_seed(0)
    layer = nn.Linear(48, 300)
    quantized = quantize_int8(nn.Sequential(layer)).model[0]
    assert isinstance(quantized, FixedRangeLinear)
    rows = torch.rand(64, 48) * 2 - 1
    rows[5] *= 0.01  # a row of small values next to rows of large ones
    with torch.no_grad():
        one = quantized(rows[5:6])
        for size in (2, 7, 40, 64):
            assert torch.equal(quantized(rows[:size])[5:6], one) if size > 5 else True
        assert torch.equal(quantized(rows[5:8])[:1], one)
        torch.testing.assert_close(quantized(rows), layer(rows), atol=0.05, rtol=0.05)


def test_fixed_point_attention_is_the_same_in_any_batch_and_close_to_float32(
    tiny_tokenizers: Tokenizers,
) -> None:
    torch.manual_seed(1)
    model = Seq2Seq(tiny_config(tiny_tokenizers, input_feeding=False)).eval()
    attention: Attention = model.decoder.attention
    src = torch.randint(4, tiny_tokenizers.source.vocab_size, (6, 30))
    lengths = torch.tensor([30, 3, 17, 1, 30, 9])
    query = torch.rand(6, 4, 16) * 2 - 1  # four beam slots per sentence
    with torch.no_grad():
        plain = model.encode(src, lengths)
        exact = exact_encoder_output(plain, dot_product_keys=True)
        together = attention(query, exact.keys, exact.memory, exact.mask)
        for row, length in enumerate(lengths.tolist()):  # the same sentence, unpadded
            memory, keys, mask = (part[row : row + 1, :length] for part in plain[:3])
            own = EncoderOutput(memory, keys, mask, plain.final)
            own = exact_encoder_output(own, dot_product_keys=True)
            context, weights = attention(query[row : row + 1], own.keys, own.memory, own.mask)
            assert torch.equal(context[0], together[0][row])
            assert torch.equal(weights[0], together[1][row, :, :length])
        reference = attention(query, plain.keys, plain.memory, plain.mask)
    # the weights as float32 computes them; the context within a few steps of its grids (2^-12)
    torch.testing.assert_close(together[1], reference[1], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(together[0], reference[0], atol=2e-3, rtol=0)


def test_a_short_row_softmaxes_the_same_alone_and_padded() -> None:
    """Torch sums a row narrower than a CPU vector in another order than a wider one: the
    attention's softmax is taken at least MIN_ROW_WIDTH wide, so padding changes nothing."""
    generator = torch.Generator().manual_seed(6)
    for width in range(1, 40):
        row = torch.randn(1, width, generator=generator) * 4
        alone_weights = wide_softmax(row)
        for extra in (1, 7, 50):
            padded = torch.cat([row, torch.full((1, extra), float("-inf"))], dim=1)
            assert torch.equal(wide_softmax(padded)[:, :width], alone_weights)
        torch.testing.assert_close(alone_weights, torch.softmax(row, dim=-1))


@pytest.mark.parametrize("bidirectional", [True, False])
def test_the_table_encoder_is_the_lstm_encoder(
    tiny_tokenizers: Tokenizers, bidirectional: bool
) -> None:
    torch.manual_seed(2)
    model = Seq2Seq(tiny_config(tiny_tokenizers, bidirectional=bidirectional)).eval()
    src = torch.randint(4, tiny_tokenizers.source.vocab_size, (5, 11))
    lengths = torch.tensor([11, 4, 1, 7, 11])
    src[torch.arange(11) >= lengths.unsqueeze(1)] = 0
    table = TokenTableEncoder.of(model.encoder, model.config, int8=False)
    quantized = TokenTableEncoder.of(model.encoder, model.config, int8=True)
    assert table is not None and quantized is not None
    with torch.no_grad():
        memory, final = model.encoder(src, lengths)
        table_memory, table_final = table(src, lengths)
        int8_memory, int8_final = quantized(src, lengths)
        for row, length in enumerate(lengths.tolist()):
            own_memory, own_final = quantized(src[row : row + 1, :length], lengths[row : row + 1])
            assert torch.equal(own_memory[0], int8_memory[row, :length])
            assert all(
                torch.equal(a[:, 0], b[:, row]) for a, b in zip(own_final, int8_final, strict=True)
            )
    torch.testing.assert_close(table_memory, memory, atol=1e-5, rtol=1e-5)
    for mine, theirs in zip(table_final, final, strict=True):
        torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(int8_memory, memory, atol=0.05, rtol=0.05)
    assert not int8_memory[lengths.unsqueeze(1) <= torch.arange(11)].any()  # zero at padding


@pytest.mark.parametrize(
    "overrides",
    [{"cell": "gru"}, {"encoder_layers": 2, "decoder_layers": 2}, {"implementation": "reference"}],
)
def test_no_table_encoder_where_the_encoder_has_another_form(
    tiny_tokenizers: Tokenizers, overrides: dict[str, object]
) -> None:
    model = Seq2Seq(tiny_config(tiny_tokenizers, **overrides))
    assert TokenTableEncoder.of(model.encoder, model.config, int8=False) is None


def test_each_sentence_is_normalised_over_its_own_shortlist(translator: Translator) -> None:
    """Over its own words (``always`` and its source words' candidates), not the batch's:
    -inf at a companion's words, log-probabilities summing to one over its own."""
    model = translator.runner.model
    shortlist = translator.runner.shortlist
    assert shortlist is not None and isinstance(model, ShortlistedModel)
    encoded = [translator.encode(text).chunks[0] for text in ("dog", "the big house today")]
    src, lengths, _ = translator.runner.padded(encoded)
    with torch.inference_mode():
        encoder_output = model.encode(src, lengths)
        state = model.initial_state(encoder_output)
        log_probs, _, _ = model.decode_step(torch.full((2,), 2), state, encoder_output)
    ids = model.vocabulary_ids(encoder_output)  # the target id of each column, per sentence
    assert ids is not None
    for row in range(2):
        own = set(shortlist.always.tolist())
        own |= set(shortlist.candidates(src[row : row + 1, : lengths[row]]).flatten().tolist())
        assert set(ids[row, torch.isfinite(log_probs[row])].tolist()) == own
        torch.testing.assert_close(log_probs[row].logsumexp(0), torch.tensor(0.0))
    assert not torch.equal(torch.isinf(log_probs[0]), torch.isinf(log_probs[1]))


# --------------------------------------------------------------------------- the bundled model


@pytest.fixture(scope="module")
def bundled() -> Translator:
    return Translator.from_dir(bundled_model_dir(), device="cpu", quantize="int8", shortlist="on")


def test_the_bundled_model_translates_everyday_sentences_the_same_in_any_batch(
    bundled: Translator,
) -> None:
    options = bundled.options(5, 2)
    expected = alone(bundled, EVERYDAY, options)
    found = [outcome(t) for t in bundled.translate_sentences(EVERYDAY, options)]
    assert found == expected
    assert streamed(bundled, EVERYDAY, 5, options) == expected
    for found in mixed_batches(bundled, EVERYDAY, options, seed=6):
        assert found == expected


@pytest.mark.anyio
async def test_the_bundled_model_serves_the_same_alone_and_among_concurrent_clients(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service's defaults on an AVX2 or AVX-512 CPU (int8, the shortlist), cache off."""
    int8_and_shortlist(monkeypatch)
    sentences = tmp_path / "everyday.txt"
    sentences.write_text("\n".join(EVERYDAY), encoding="utf-8")
    report = await invariance.measure(
        argparse.Namespace(
            model_dir=bundled_model_dir(),
            device="cpu",
            sentences=sentences,
            limit=len(EVERYDAY),
            clients=len(EVERYDAY) // 2,
            beam=5,
            alternatives=2,
        )
    )
    assert report["sentences"] == len(EVERYDAY)
    assert report["precision"] == "int8" and report["shortlist"]
    assert report["differ"] == 0, report["differing_lines"]


def test_every_int8_layer_of_the_bundled_model_reads_activations_within_its_range(
    bundled: Translator,
) -> None:
    """The design's premise: each Linear's input lies in [-1, 1] (recurrent outputs, tanh,
    convex combinations of them), so one fixed scale quantizes every batch alike."""
    largest: list[float] = []

    def record(_: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        largest.append(float(inputs[0].abs().max()))

    layers = [module for module in _modules_of(bundled) if isinstance(module, FixedRangeLinear)]
    assert len(layers) >= 3  # attention keys, combine, the tables' recurrent halves
    hooks = [layer.register_forward_pre_hook(record) for layer in layers]
    try:
        bundled.translate(EVERYDAY[:4], beam=5)
    finally:
        for hook in hooks:
            hook.remove()
    assert largest and max(largest) <= 1.0 + 1e-6


def _modules_of(translator: Translator) -> list[nn.Module]:
    model = translator.runner.model
    assert isinstance(model, ShortlistedModel)
    found = list(model.model.modules())
    for table in (model.recurrent_step, model.encoder):
        assert isinstance(table, TokenTableLstm | TokenTableEncoder)
        found += list(table.hidden_layer.modules())
    return found
