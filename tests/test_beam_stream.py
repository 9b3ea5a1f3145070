"""Continuous batching: sentences that join a running beam search, or leave it early, get
exactly what a search of their own would give them."""

from __future__ import annotations

import pytest
import torch

from model.nn.seq2seq import Seq2Seq
from model.search.decode import beam_search, greedy_search
from model.search.options import SearchOptions
from model.search.stream import BeamStream, FinishedSentence
from model.text.tokenizer import Tokenizers
from tests.test_search import MAX_LEN, SOURCES, assert_same_results, batch_of


def run_to_end(stream: BeamStream, found: dict[int, FinishedSentence]) -> None:
    with torch.no_grad():
        while len(stream):
            found.update((done.handle, done) for done in stream.advance())


@pytest.mark.parametrize("block", [0, 2])
@pytest.mark.parametrize("check_every", [1, 3])
def test_sentences_joining_a_running_search_get_their_own_results(
    peaked_model: Seq2Seq, tiny_tokenizers: Tokenizers, block: int, check_every: int
) -> None:
    stream = BeamStream(
        peaked_model,
        SearchOptions(
            beam=3, n_best=3, length_penalty=1.0, attention=True, block_ngram_repeat=block
        ),
        check_every=check_every,
    )
    found: dict[int, FinishedSentence] = {}
    handles = []
    with torch.no_grad():
        # Two sentences start; the others join one and two checks later (wider sources too).
        for group in (SOURCES[:2], SOURCES[2:4], SOURCES[4:]):
            src, lengths = batch_of(tiny_tokenizers, group)
            handles += stream.add(src, lengths, MAX_LEN)
            found.update((done.handle, done) for done in stream.advance())
    run_to_end(stream, found)
    assert sorted(found) == sorted(handles)
    for sentence, handle in zip(SOURCES, handles, strict=True):
        src, lengths = batch_of(tiny_tokenizers, [sentence])
        alone = beam_search(
            peaked_model,
            src,
            lengths,
            MAX_LEN,
            SearchOptions(
                beam=3, n_best=3, length_penalty=1.0, attention=True, block_ngram_repeat=block
            ),
        )
        result = found[handle]
        assert result.tokens == alone.tokens[0]
        assert result.scores == pytest.approx(alone.scores[0], abs=1e-4)
        assert alone.attention is not None and result.attention is not None
        for mine, theirs in zip(result.attention, alone.attention[0], strict=True):
            torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=1e-4)


def test_a_stream_of_beam_one_equals_greedy(
    peaked_model: Seq2Seq, tiny_tokenizers: Tokenizers
) -> None:
    src, lengths = batch_of(tiny_tokenizers, SOURCES)
    greedy = greedy_search(peaked_model, src, lengths, MAX_LEN, SearchOptions(attention=True))
    assert_same_results(
        beam_search(peaked_model, src, lengths, MAX_LEN, SearchOptions(beam=1, attention=True)),
        greedy,
    )


def test_cancelled_sentences_leave_without_a_result(
    peaked_model: Seq2Seq, tiny_tokenizers: Tokenizers
) -> None:
    stream = BeamStream(peaked_model, SearchOptions(beam=3), check_every=1)
    src, lengths = batch_of(tiny_tokenizers, SOURCES)
    handles = stream.add(src, lengths, MAX_LEN)
    stream.cancel([handles[1], handles[3], 10_000])  # an unknown handle is ignored
    found: dict[int, FinishedSentence] = {}
    run_to_end(stream, found)
    assert sorted(found) == [handles[0], handles[2], handles[4]]
    assert len(stream) == 0


def test_an_empty_stream_advances_to_nothing(peaked_model: Seq2Seq) -> None:
    stream = BeamStream(peaked_model, SearchOptions(beam=2))
    assert stream.advance() == []
    assert stream.add(torch.zeros(0, 3, dtype=torch.long), torch.zeros(0), 5) == []
    assert len(stream) == 0
