"""Ensembles: the mean of the members' probabilities, searched like one model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from model.nn.seq2seq import Seq2Seq
from model.search.decode import beam_search, greedy_search
from model.search.ensemble import Ensemble
from model.search.options import SearchOptions
from model.store.checkpoint import load_model
from model.text.tokenizer import BOS_ID, Tokenizers
from model.translator import Translator
from tests.conftest import tiny_config
from tests.test_search import MAX_LEN, SOURCES, assert_same_results, batch_of


@pytest.fixture(scope="module")
def other_model(tiny_tokenizers: Tokenizers) -> Seq2Seq:
    torch.manual_seed(7)
    model = Seq2Seq(tiny_config(tiny_tokenizers)).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.uniform_(-1.0, 1.0)
    return model


def test_a_step_is_the_log_of_the_mean_probability(
    peaked_model: Seq2Seq, other_model: Seq2Seq, tiny_tokenizers: Tokenizers
) -> None:
    src, lengths = batch_of(tiny_tokenizers, SOURCES)
    ensemble = Ensemble([peaked_model, other_model])
    prev = torch.full((len(SOURCES),), BOS_ID)
    with torch.no_grad():
        encoded = ensemble.encode(src, lengths)
        log_probs, _, _ = ensemble.decode_step(prev, ensemble.initial_state(encoded), encoded)
        expected = torch.zeros_like(log_probs)
        for model in (peaked_model, other_model):
            output = model.encode(src, lengths)
            member, _, _ = model.decode_step(prev, model.initial_state(output), output)
            expected += member.exp() / 2
    torch.testing.assert_close(log_probs, expected.log(), atol=1e-5, rtol=1e-5)
    assert log_probs.exp().sum(dim=-1) == pytest.approx([1.0] * len(SOURCES), abs=1e-4)


@pytest.mark.parametrize("beam_size", [1, 4])
def test_a_model_with_itself_searches_as_the_model_alone(
    peaked_model: Seq2Seq, tiny_tokenizers: Tokenizers, beam_size: int
) -> None:
    src, lengths = batch_of(tiny_tokenizers, SOURCES)
    options = SearchOptions(beam=beam_size)
    alone = beam_search(peaked_model, src, lengths, MAX_LEN, options)
    twice = beam_search(Ensemble([peaked_model, peaked_model]), src, lengths, MAX_LEN, options)
    assert_same_results(alone, twice)


def test_beam_of_one_equals_greedy(
    peaked_model: Seq2Seq, other_model: Seq2Seq, tiny_tokenizers: Tokenizers
) -> None:
    src, lengths = batch_of(tiny_tokenizers, SOURCES)
    ensemble = Ensemble([peaked_model, other_model])
    greedy = greedy_search(ensemble, src, lengths, MAX_LEN, SearchOptions(attention=True))
    beam = beam_search(ensemble, src, lengths, MAX_LEN, SearchOptions(beam=1, attention=True))
    assert_same_results(greedy, beam)


def test_an_ensemble_needs_two_models(peaked_model: Seq2Seq) -> None:
    with pytest.raises(ValueError, match="at least two"):
        Ensemble([peaked_model])


def test_members_must_score_the_same_columns(peaked_model: Seq2Seq) -> None:
    class OwnColumns:
        def __init__(self, ids: torch.Tensor | None) -> None:
            self.ids = ids

        def vocabulary_ids(self, _: object) -> torch.Tensor | None:
            return self.ids

    columns = torch.tensor([[0, 1, 2, 3, 9]])
    same = Ensemble([OwnColumns(columns), OwnColumns(columns.clone())])
    assert torch.equal(same.vocabulary_ids((None, None)), columns)
    assert Ensemble([peaked_model, peaked_model]).vocabulary_ids((None, None)) is None
    with pytest.raises(ValueError, match="different target columns"):
        Ensemble([OwnColumns(columns), OwnColumns(None)]).vocabulary_ids((None, None))
    with pytest.raises(ValueError, match="different target columns"):
        Ensemble([OwnColumns(columns), OwnColumns(columns + 1)]).vocabulary_ids((None, None))


@pytest.mark.parametrize("quantize", ["off", "int8"])
def test_a_translator_ensemble_of_one_model_twice_translates_as_the_model(
    tiny_model_dir: object, quantize: str
) -> None:
    texts = ["i love the cat.", "we see a big house today", "dog"]
    alone = Translator(load_model(tiny_model_dir), "cpu", quantize=quantize)
    ensemble = Translator(
        load_model(tiny_model_dir),
        "cpu",
        quantize=quantize,
        ensemble_with=[load_model(tiny_model_dir)],
    )
    assert isinstance(ensemble.runner.model, Ensemble)
    assert ensemble.translate(texts, beam=3) == alone.translate(texts, beam=3)


def test_models_of_other_vocabularies_make_no_ensemble(
    tiny_model_dir: Path, vi_en_dir: Path
) -> None:
    with pytest.raises(ValueError, match="tokenizers differ"):
        Translator(load_model(tiny_model_dir), "cpu", ensemble_with=[load_model(vi_en_dir)])
