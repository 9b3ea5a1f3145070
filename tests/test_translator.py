"""Translator: order, batching, sentence handling, long input, n-best, attention, threads.

The tiny model is untrained, so its outputs are arbitrary but deterministic: every test
compares two paths through the Translator, never fixed strings.
"""

from __future__ import annotations

import unicodedata
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import torch

from model.encoding import chunk_text, plan_batches
from model.store.checkpoint import ModelFileError, load_model
from model.text.sentences import join_sentences, split_sentences
from model.translation import SentenceTranslation
from model.translator import Translator

TEXTS = [
    "I love the cat.",
    "We see a big house today. The dog likes the city!",
    "",
    "you",
    "The small country.\nA big city today.\n\nThe cat.",
]


@pytest.fixture(scope="module")
def translator(tiny_model_dir: Path) -> Translator:
    return Translator.from_dir(tiny_model_dir, device="cpu")


def test_model_info_describes_the_model(translator: Translator) -> None:
    info = translator.model_info
    assert info["metadata"]["version"] == "tiny-test"
    assert info["architecture"]["cell"] == "lstm"
    assert info["parameters"] > 0
    assert info["device"] == "cpu"
    assert info["precision"] == "float32"  # bf16 applies to CUDA only


def test_order_is_kept_and_batching_does_not_change_results(
    translator: Translator, tiny_model_dir: Path
) -> None:
    together = translator.translate(TEXTS, beam=3)
    one_by_one = [translator.translate([text], beam=3)[0] for text in TEXTS]
    assert together == one_by_one
    # A budget this small puts every sentence in its own batch.
    tight = Translator.from_dir(tiny_model_dir, device="cpu", max_batch_tokens=1)
    assert tight.translate(TEXTS, beam=3) == together


def test_batches_searched_in_parallel_give_the_same_translations(
    translator: Translator, tiny_model_dir: Path
) -> None:
    one_at_a_time = Translator.from_dir(tiny_model_dir, device="cpu", max_batch_tokens=1)
    parallel = Translator.from_dir(tiny_model_dir, device="cpu", max_batch_tokens=1, workers=3)
    sentences = [*TEXTS, *(text.upper() for text in TEXTS)]
    expected = one_at_a_time.translate_sentences(sentences, one_at_a_time.options(beam=3, n_best=2))
    assert parallel.translate_sentences(sentences, parallel.options(beam=3, n_best=2)) == expected
    with pytest.raises(ValueError, match="workers"):
        Translator.from_dir(tiny_model_dir, device="cpu", workers=0)


def test_each_sentence_is_encoded_once(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    translator = Translator.from_dir(tiny_model_dir, device="cpu")
    source = translator._source
    encoded: list[str] = []
    one, many = source.encode, source.encode_batch

    def counting(text: str, **kwargs: bool) -> list[int]:
        encoded.append(text)
        return one(text, **kwargs)

    def counting_batch(texts: list[str], *args: Any, **kwargs: Any) -> list[list[int]]:
        encoded.extend(texts)
        return many(texts, *args, **kwargs)

    monkeypatch.setattr(source, "encode", counting)
    monkeypatch.setattr(source, "encode_batch", counting_batch)
    sentences = ["I love the cat.", "We see a big house today.", "you", "\n", ""]
    translator.translate_sentences(sentences, translator.options(beam=2))
    # once each ("you" with the full stop it is searched with); layout and empty ones not at all
    assert encoded == ["I love the cat.", "We see a big house today.", "you."]


def test_search_translates_exactly_the_batch_it_is_given(translator: Translator) -> None:
    """The service's batcher forms the batch; search runs it as one call, in its order."""
    sentences = ["We see a big house today.", "\n", "I love the cat.", "you"]
    batch = [translator.encode(sentence) for sentence in sentences]
    assert [sentence.rows for sentence in batch] == [1, 0, 1, 1]
    searched = translator.search(batch, translator.options(beam=2, n_best=2))
    offline = translator.translate_sentences(sentences, translator.options(beam=2, n_best=2))
    assert [t.hypotheses[0].text for t in searched] == [t.hypotheses[0].text for t in offline]
    assert searched[1].hypotheses[0].text == "\n"
    assert translator.search([]) == []


def test_plan_batches_go_longest_first_within_the_budget(translator: Translator) -> None:
    sentences = [s for text in TEXTS for s in split_sentences(text)]
    encoded = [translator.encode(sentence) for sentence in sentences]
    budget, beam = 40, 2
    batches = plan_batches(encoded, budget, beam)
    order = [index for batch in batches for index in batch]
    assert sorted(order) == [i for i, sentence in enumerate(encoded) if sentence.rows]
    widths = [encoded[index].longest for index in order]
    assert widths == sorted(widths, reverse=True)
    for batch in batches:
        rows = sum(encoded[i].rows for i in batch)
        assert len(batch) == 1 or rows * max(encoded[i].longest for i in batch) * beam <= budget


def test_empty_inputs(translator: Translator) -> None:
    assert translator.translate([]) == []
    assert translator.translate(["", "   "]) == ["", ""]
    assert split_sentences("") == []
    assert translator.translate_sentences([]) == []


def test_text_is_translated_sentence_by_sentence_and_lines_are_kept(
    translator: Translator,
) -> None:
    text = TEXTS[4]
    sentences = split_sentences(text)
    assert sentences == ["The small country.", "\n", "A big city today.", "\n\n", "The cat."]
    translated = translator.translate_sentences(sentences, translator.options(beam=2))
    assert [t.hypotheses[0].text for t in translated][1::2] == ["\n", "\n\n"]
    expected = join_sentences([t.hypotheses[0].text for t in translated])
    assert translator.translate([text], beam=2) == [expected]
    assert expected.count("\n") == 3


def test_greedy_is_beam_of_one(translator: Translator) -> None:
    sentences = ["I love the cat.", "The dog likes the big city today."]
    greedy = translator.translate_sentences(sentences, translator.options(beam=1))
    assert [t.hypotheses[0].text for t in greedy] == translator.translate(sentences, beam=1)
    for translation in greedy:
        assert len(translation.hypotheses) == 1


def test_nfc_normalisation(translator: Translator) -> None:
    composed = "The café is big."
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed
    assert translator.translate([decomposed]) == translator.translate([composed])
    # normalised once, when encoded: both spellings become the same search input
    assert translator.encode(decomposed) == translator.encode(composed)
    assert translator.encode(decomposed).source == composed


def test_n_best_hypotheses_are_sorted_with_tokens_and_attention(translator: Translator) -> None:
    sentence = "We see a big house today."
    (translation,) = translator.translate_sentences(
        [sentence], translator.options(beam=4, n_best=3, attention=True)
    )
    assert translation.source == sentence
    assert len(translation.source_tokens) == translator.count_tokens(sentence)
    scores = [h.score for h in translation.hypotheses]
    assert len(scores) == 3
    assert scores == sorted(scores, reverse=True)
    for hypothesis in translation.hypotheses:
        assert hypothesis.attention is not None
        assert len(hypothesis.attention) == len(hypothesis.target_tokens)
        for row in hypothesis.attention:
            assert len(row) == len(translation.source_tokens)
            assert sum(row) == pytest.approx(1.0, abs=1e-4)
    # the best of the n-best list is what translate() returns
    assert translation.hypotheses[0].text == translator.translate([sentence], beam=4)[0]


def test_long_sentence_is_translated_in_chunks_not_truncated(tiny_model_dir: Path) -> None:
    limit = 12
    chunked = Translator.from_dir(tiny_model_dir, device="cpu", max_source_tokens=limit)
    sentence = "the big cat, the small dog and the house; " * 4 + "we see the city today."
    assert chunked.count_tokens(sentence) > 3 * limit
    pieces = chunk_text(sentence, limit, chunked.count_tokens)
    assert len(pieces) > 3
    (translation,) = chunked.translate_sentences(
        [sentence], chunked.options(beam=2, attention=True)
    )
    # every source token is accounted for ...
    assert len(translation.source_tokens) == sum(chunked.count_tokens(p) for p in pieces)
    # ... and the output is the chunks' translations joined
    parts = chunked.translate_sentences(pieces, chunked.options(beam=2, attention=True))
    best = translation.hypotheses[0]
    assert best.text == " ".join(p.hypotheses[0].text for p in parts if p.hypotheses[0].text)
    assert best.score == pytest.approx(sum(p.hypotheses[0].score for p in parts), abs=1e-4)
    assert best.target_tokens == [t for p in parts for t in p.hypotheses[0].target_tokens]
    # attention is block diagonal: each chunk's target rows see only that chunk's source
    assert best.attention is not None
    first = parts[0]
    first_rows = len(first.hypotheses[0].target_tokens)
    first_columns = len(first.source_tokens)
    for row in best.attention[:first_rows]:
        assert sum(row[:first_columns]) == pytest.approx(1.0, abs=1e-4)
        assert not any(row[first_columns:])


@pytest.mark.parametrize(
    "text",
    [
        "one, two, three; four: five (six) seven — eight nine ten eleven twelve",
        "word " * 40,
        "x" * 300,
    ],
)
def test_chunk_text_respects_the_limit_and_loses_nothing(translator: Translator, text: str) -> None:
    limit = 8
    pieces = chunk_text(text, limit, translator.count_tokens)
    assert all(translator.count_tokens(piece) <= limit for piece in pieces)
    assert "".join("".join(pieces).split()) == "".join(text.split())


def test_invalid_arguments(translator: Translator, tiny_model_dir: Path) -> None:
    with pytest.raises(ValueError, match="beam"):
        translator.translate_sentences(["a cat"], translator.options(beam=0))
    with pytest.raises(ValueError, match="n_best"):
        translator.translate_sentences(["a cat"], translator.options(beam=2, n_best=3))
    with pytest.raises(ValueError, match="device"):
        Translator(load_model(tiny_model_dir), device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            Translator(load_model(tiny_model_dir), device="cuda")
    with pytest.raises(ModelFileError):
        Translator.from_dir(tiny_model_dir / "missing", device="cpu")


def test_translating_while_another_translator_loads(
    translator: Translator, tiny_model_dir: Path
) -> None:
    """The service reloads by building a new Translator in one thread while a worker thread
    keeps translating with the old one; neither disturbs the other."""
    expected = translator.translate(TEXTS, beam=2)
    with ThreadPoolExecutor(max_workers=2) as pool:
        translating = [pool.submit(translator.translate, TEXTS, 2) for _ in range(3)]
        loading = pool.submit(Translator.from_dir, tiny_model_dir, "cpu")
        reloaded = loading.result()
        assert [future.result() for future in translating] == [expected] * 3
    assert reloaded.translate(TEXTS, beam=2) == expected


@pytest.mark.parametrize("beam", [1, 3])
def test_a_stream_translates_like_search_whenever_sentences_join(
    tiny_model_dir: Path, beam: int
) -> None:
    """Continuous batching: sentences (a chunked one, an empty one among them) added to a
    running stream at different times get what one search call gives them."""
    chunked = Translator.from_dir(tiny_model_dir, device="cpu", max_source_tokens=12)
    sentences = [
        "I love the cat.",
        "the big cat, the small dog and the house; " * 3 + "we see the city today",
        "",
        "We see a big house today.",
        "you",
    ]
    encoded = [chunked.encode(sentence) for sentence in sentences]
    expected = chunked.search(encoded, chunked.options(beam=beam, n_best=beam, attention=True))
    stream = chunked.open_stream(chunked.options(beam=beam, n_best=beam, attention=True))
    found: dict[int, SentenceTranslation] = {}
    handles = stream.add(encoded[:2])
    found.update(stream.advance())
    handles += stream.add(encoded[2:])
    while len(stream):
        found.update(stream.advance())
    for handle, wanted in zip(handles, expected, strict=True):
        got = found[handle]
        assert got.source_tokens == wanted.source_tokens
        assert [h.text for h in got.hypotheses] == [h.text for h in wanted.hypotheses]
        assert [h.score for h in got.hypotheses] == pytest.approx(
            [h.score for h in wanted.hypotheses], abs=1e-4
        )
        assert [h.target_tokens for h in got.hypotheses] == [
            h.target_tokens for h in wanted.hypotheses
        ]


def test_a_cancelled_sentence_never_comes_out_of_a_stream(translator: Translator) -> None:
    stream = translator.open_stream(translator.options(beam=2))
    first, second = stream.add([translator.encode("I love the cat."), translator.encode("you")])
    stream.cancel([first])
    out = []
    while len(stream):
        out += stream.advance()
    assert [handle for handle, _ in out] == [second]
