"""The bucketed, padded decoder step behind CUDA graphs (model/runtime/cuda_graphs.py), run
eagerly on the CPU (``capture=False``): the copying of real rows into a bucket and back out
gives the model's own step, and a whole search gives the same hypotheses. The graphs
themselves need a GPU: tests/test_cuda.py."""

from __future__ import annotations

import torch
from torch.utils._pytree import tree_leaves

from model.nn.seq2seq import Seq2Seq
from model.runtime.cuda_graphs import GraphedModel, bucket_of, width_of
from model.search.decode import beam_search, greedy_search
from model.search.options import SearchOptions
from model.text.tokenizer import PAD_ID, Tokenizers

SOURCES = ["i love the cat", "we see a big house today", "dog", "the small country"]


def batch_of(tokenizers: Tokenizers, sentences: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    ids = [tokenizers.source.encode(sentence) for sentence in sentences]
    lengths = torch.tensor([len(row) for row in ids])
    src = torch.full((len(ids), int(lengths.max())), PAD_ID, dtype=torch.long)
    for row, tokens in enumerate(ids):
        src[row, : len(tokens)] = torch.tensor(tokens)
    return src, lengths


def test_buckets_round_up() -> None:
    assert [bucket_of(n) for n in (1, 8, 9, 100, 1024)] == [8, 8, 16, 128, 1024]
    assert [width_of(w) for w in (1, 16, 17, 200)] == [16, 16, 32, 208]


@torch.inference_mode()
def test_a_padded_step_is_the_models_step(
    peaked_model: Seq2Seq, tiny_tokenizers: Tokenizers
) -> None:
    graphed = GraphedModel(peaked_model, capture=False)
    src, lengths = batch_of(tiny_tokenizers, SOURCES)
    encoder_output = peaked_model.encode(src, lengths)
    for rows_per_sentence in (1, 3):  # greedy, and beam slots sharing a sentence's source
        index = torch.arange(len(SOURCES)).repeat_interleave(rows_per_sentence)
        state = peaked_model.reorder(peaked_model.initial_state(encoder_output), index)
        tokens = torch.randint(4, 20, (index.numel(),))
        for _ in range(3):  # the state carried from step to step, the buffers reused
            expected = peaked_model.decode_step(tokens, state, encoder_output)
            found = graphed.decode_step(tokens, state, encoder_output)
            expected_leaves, found_leaves = tree_leaves(expected), tree_leaves(found)
            assert [x.shape for x in found_leaves] == [x.shape for x in expected_leaves]
            for x, y in zip(expected_leaves, found_leaves, strict=True):
                torch.testing.assert_close(x, y)
            state, tokens = found[1], found[0].argmax(dim=-1)
    assert graphed.buckets == [(8, 1, 16), (8, 3, 16)]


def test_a_search_through_buckets_finds_the_same_hypotheses(
    peaked_model: Seq2Seq, tiny_tokenizers: Tokenizers
) -> None:
    """Sentences leave the batch as they finish, so the buckets and the loaded encoder output
    change during the search."""
    graphed = GraphedModel(peaked_model, capture=False)
    src, lengths = batch_of(tiny_tokenizers, SOURCES * 3)
    for options in (SearchOptions(block_loops=4), SearchOptions(beam=3, n_best=2)):
        search = greedy_search if options.beam == 1 else beam_search
        expected = search(peaked_model, src, lengths, 12, options)
        found = search(graphed, src, lengths, 12, options)
        assert found.tokens == expected.tokens
        torch.testing.assert_close(torch.tensor(found.scores), torch.tensor(expected.scores))
