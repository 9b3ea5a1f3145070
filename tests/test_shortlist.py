"""The lexical shortlist (model/runtime/shortlist.py, training/shortlist.py, mt-shortlist): a
shortlist that allows every word changes nothing; a narrow one keeps search inside it, over
joins and leaves; int8 rows are cut exactly; files are checked; the builder finds translations."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from cli.evaluate import main as eval_main
from cli.shortlist import main as shortlist_main
from model.nn.seq2seq import Seq2Seq
from model.runtime.quantize import quantize_int8
from model.runtime.shortlist import (
    SHORTLIST_FILE,
    Shortlist,
    ShortlistedModel,
    ShortlistError,
    load_shortlist,
)
from model.search.decode import beam_search, greedy_search
from model.search.options import SearchOptions
from model.search.stream import BeamStream, FinishedSentence, StreamableModel
from model.store.checkpoint import load_model
from model.store.durable import sha256_file
from model.text.tokenizer import EOS_ID, PAD_ID, Tokenizers
from model.translator import Translator
from service.settings import Settings
from tests.conftest import ENGLISH_WORDS, VIETNAMESE_WORDS, make_sentences
from tests.test_quantize import assert_mode_setting, model_info_and_translation
from tests.test_search import MAX_LEN, SOURCES, assert_same_results, batch_of
from training.data import CleanCorpus, EncodedSide
from training.shortlist import (
    ShortlistRecipe,
    build_shortlist,
    ibm_model1,
    spelling_pieces,
    with_unmarked_sources,
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def shortlist_of(
    tokenizers: Tokenizers, always: list[int], table: dict[int, list[int]] | None = None
) -> Shortlist:
    """A hand-made shortlist: ``always``, and ``table``'s rows (others: nothing)."""
    source_vocab, target_vocab = tokenizers.source.vocab_size, tokenizers.target.vocab_size
    rows = table or {}
    width = max([1, *(len(row) for row in rows.values())])
    grid = torch.full((source_vocab, width), EOS_ID, dtype=torch.long)
    for word, row in rows.items():
        grid[word, : len(row)] = torch.tensor(row)
    info = {"target_vocab_size": str(target_vocab), "source_vocab_size": str(source_vocab)}
    return Shortlist(torch.tensor(sorted({EOS_ID, *always})), grid, info)


def everything(tokenizers: Tokenizers) -> Shortlist:
    return shortlist_of(tokenizers, list(range(tokenizers.target.vocab_size)))


def assert_same_beams(
    mine: StreamableModel, theirs: StreamableModel, tokenizers: Tokenizers
) -> None:
    """Beam search (3 slots, 3 best) over :data:`SOURCES` finds the same with both models."""
    src, lengths = batch_of(tokenizers, SOURCES)
    with torch.no_grad():
        assert_same_results(
            beam_search(mine, src, lengths, MAX_LEN, SearchOptions(beam=3, n_best=3)),
            beam_search(theirs, src, lengths, MAX_LEN, SearchOptions(beam=3, n_best=3)),
        )


def test_a_shortlist_of_every_word_changes_no_result(
    peaked_model: Seq2Seq, tiny_tokenizers: Tokenizers
) -> None:
    shortlisted = ShortlistedModel(peaked_model, everything(tiny_tokenizers))
    src, lengths = batch_of(tiny_tokenizers, SOURCES)
    with torch.no_grad():
        for search in (
            lambda model: beam_search(
                model,
                src,
                lengths,
                MAX_LEN,
                SearchOptions(beam=3, n_best=3, length_penalty=1.0, attention=True),
            ),
            lambda model: greedy_search(
                model, src, lengths, MAX_LEN, SearchOptions(attention=True)
            ),
        ):
            assert_same_results(search(shortlisted), search(peaked_model))


def test_a_narrow_shortlist_keeps_every_step_inside_it(
    peaked_model: Seq2Seq, tiny_tokenizers: Tokenizers
) -> None:
    # far from 4: a place in a sentence's own vocabulary is not its target id
    allowed = list(range(40, 76))
    shortlisted = ShortlistedModel(peaked_model, shortlist_of(tiny_tokenizers, allowed))
    src, lengths = batch_of(tiny_tokenizers, SOURCES)
    with torch.no_grad():
        encoder_output = shortlisted.encode(src, lengths)
        state = shortlisted.initial_state(encoder_output)
        log_probs, _, _ = shortlisted.decode_step(
            torch.full((len(SOURCES),), 2), state, encoder_output
        )
        result = beam_search(shortlisted, src, lengths, MAX_LEN, SearchOptions(beam=3, n_best=3))
        greedy = greedy_search(shortlisted, src, lengths, MAX_LEN)
    # columns are places in each sentence's own vocabulary; every finite one is allowed
    ids = shortlisted.vocabulary_ids(encoder_output)
    assert ids is not None and ids.shape == log_probs.shape
    assert set(ids[torch.isfinite(log_probs)].tolist()) == {EOS_ID, *allowed}
    torch.testing.assert_close(log_probs.logsumexp(-1), torch.zeros(len(SOURCES)))
    for found in (result, greedy):  # both searches give target ids
        chosen = {token for sentence in found.tokens for best in sentence for token in best}
        assert chosen and chosen <= set(allowed)


def test_each_sentence_brings_its_own_words_and_joins_widen_the_union(
    peaked_model: Seq2Seq, tiny_tokenizers: Tokenizers
) -> None:
    first, second = SOURCES[0], SOURCES[1]
    first_ids = tiny_tokenizers.source.encode(first)
    second_ids = [i for i in tiny_tokenizers.source.encode(second) if i not in first_ids]
    table = {word: [100] for word in first_ids} | {word: [101] for word in second_ids}
    shortlisted = ShortlistedModel(peaked_model, shortlist_of(tiny_tokenizers, [7, 8], table))
    stream = BeamStream(
        shortlisted,
        SearchOptions(beam=3, n_best=1, length_penalty=1.0, attention=False),
        check_every=1,
    )
    with torch.no_grad():
        stream.add(*batch_of(tiny_tokenizers, [first]), MAX_LEN)
        stream.advance()
        assert stream._beams is not None
        # the special ids first (PAD and BOS never scored), then always, then the sentence's own
        assert stream._beams.encoder_output.output.ids.tolist() == [0, 1, 2, EOS_ID, 7, 8, 100]
        stream.add(*batch_of(tiny_tokenizers, [second]), MAX_LEN)
        found: list[FinishedSentence] = []
        while len(stream):
            found += stream.advance()
    assert len(found) == 2
    for sentence in found:
        assert set(sentence.tokens[0]) <= {7, 8, 100, 101}


def test_a_leave_cuts_the_layer_anew_only_when_the_union_shrinks_a_lot(
    peaked_model: Seq2Seq, tiny_tokenizers: Tokenizers
) -> None:
    wide = {word: list(range(50, 150)) for word in tiny_tokenizers.source.encode(SOURCES[0])}
    shortlisted = ShortlistedModel(peaked_model, shortlist_of(tiny_tokenizers, [7], wide))
    src, lengths = batch_of(tiny_tokenizers, [SOURCES[0], "zzz"])
    with torch.no_grad():
        both = shortlisted.encode(src, lengths)
        first = shortlisted.reorder_encoder_output(both, torch.tensor([0]))
        other = shortlisted.reorder_encoder_output(both, torch.tensor([1]))
    assert first.output is both.output  # the same union: the layer is kept
    assert other.output.ids.numel() < both.output.ids.numel() / 2  # cut anew, narrower


def test_int8_rows_are_cut_exactly(peaked_model: Seq2Seq, tiny_tokenizers: Tokenizers) -> None:
    quantized = quantize_int8(peaked_model).model
    shortlisted = ShortlistedModel(quantized, everything(tiny_tokenizers))
    assert_same_beams(shortlisted, quantized, tiny_tokenizers)


def test_a_shortlist_file_round_trips_and_bad_ones_are_named(
    tmp_path: Path, tiny_tokenizers: Tokenizers
) -> None:
    shortlist = shortlist_of(tiny_tokenizers, [5, 6], {9: [10, 11]})
    path = tmp_path / SHORTLIST_FILE
    shortlist.save(path)
    sizes = (tiny_tokenizers.source.vocab_size, tiny_tokenizers.target.vocab_size)
    loaded = Shortlist.load(path, *sizes)
    assert torch.equal(loaded.always, shortlist.always)
    assert torch.equal(loaded.table, shortlist.table)
    with pytest.raises(ShortlistError, match="built for vocabularies"):
        Shortlist.load(path, sizes[0] + 1, sizes[1])
    path.write_bytes(b"not safetensors")
    with pytest.raises(ShortlistError, match="not a readable shortlist"):
        Shortlist.load(path, *sizes)


def test_modes_decide_when_the_file_is_used(
    tmp_path: Path, tiny_model_dir: Path, tiny_tokenizers: Tokenizers
) -> None:
    directory = tmp_path / "model"
    shutil.copytree(tiny_model_dir, directory)
    loaded = load_model(directory)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert load_shortlist(loaded, "auto", cpu) is None  # no file: the whole vocabulary
    with pytest.raises(ShortlistError, match="mt-shortlist"):
        load_shortlist(loaded, "on", cpu)
    with pytest.raises(ValueError, match="shortlist must be one of"):
        load_shortlist(loaded, "yes", cpu)
    shortlist_of(tiny_tokenizers, [5]).save(directory / SHORTLIST_FILE)
    assert load_shortlist(loaded, "auto", cpu) is not None
    assert load_shortlist(loaded, "auto", cuda) is None
    assert load_shortlist(loaded, "off", cpu) is None
    translator = Translator.from_dir(directory, device="cpu", shortlist="auto")
    assert translator.model_info["shortlist"]["target_vocab_size"] == str(
        tiny_tokenizers.target.vocab_size
    )
    assert Translator.from_dir(directory, device="cpu").model_info["shortlist"] is None


def test_ibm_model1_finds_the_translation_of_each_word() -> None:
    # source words 0, 1, 2 translate to target words 5, 6, 7; every pair mixes two of them
    pairs = [([0, 1], [6, 5]), ([1, 2], [7, 6]), ([0, 2], [5, 7])] * 5
    source = EncodedSide.from_lists([words for words, _ in pairs])
    target = EncodedSide.from_lists([words for _, words in pairs])
    table = ibm_model1(source, target, 3, 8, iterations=5)
    assert table.shape == (4, 8)
    assert [int(np.argmax(table[word])) for word in range(3)] == [5, 6, 7]
    np.testing.assert_allclose(table.sum(axis=1), 1.0, rtol=1e-5)


def test_vietnamese_sources_are_read_again_without_their_marks() -> None:
    corpus = CleanCorpus(
        ["Tôi yêu thành phố này.", "OK, 3 files", "Đường phố"], ["I love it.", "OK", "Street"], "d"
    )
    both = with_unmarked_sources(corpus)
    assert both.sources == [*corpus.sources, "Toi yeu thanh pho nay.", "Duong pho"]
    assert both.targets == [*corpus.targets, "I love it.", "Street"]
    assert both.digest != corpus.digest


def test_the_builder_and_mt_shortlist_write_a_shortlist_the_translator_loads(
    tmp_path: Path, tiny_model_dir: Path, tiny_tokenizers: Tokenizers
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    english = make_sentences(ENGLISH_WORDS, 60, 7)
    lexicon = dict(zip(ENGLISH_WORDS, VIETNAMESE_WORDS, strict=False))
    vietnamese = [" ".join(lexicon[word] for word in line.split()) for line in english]
    (data / "train.en").write_text("\n".join(english) + "\n", encoding="utf-8")
    (data / "train.vi").write_text("\n".join(vietnamese) + "\n", encoding="utf-8")
    directory = tmp_path / "model"
    shutil.copytree(tiny_model_dir, directory)
    recipe = ShortlistRecipe(frequent=5, per_source=3, iterations=3)
    args = ["--model", str(directory), "--data-dir", str(data), "--frequent", "5"]
    assert shortlist_main([*args, "--per-source", "3", "--iterations", "3"]) == 0
    recorded = json.loads((directory / "config.json").read_text(encoding="utf-8"))["shortlist"]
    assert recorded["sha256"] == sha256_file(directory / SHORTLIST_FILE)  # checked like weights
    shortlist = Shortlist.load(
        directory / SHORTLIST_FILE,
        tiny_tokenizers.source.vocab_size,
        tiny_tokenizers.target.vocab_size,
    )
    assert shortlist.info["frequent"] == str(recipe.frequent)
    assert EOS_ID in shortlist.always.tolist() and PAD_ID not in shortlist.always.tolist()
    # "cat" brings the pieces of "mèo"
    cat = tiny_tokenizers.source.encode("cat")
    meo = set(tiny_tokenizers.target.encode("mèo"))
    assert meo <= set(shortlist.table[cat].flatten().tolist()) | set(shortlist.always.tolist())
    translator = Translator.from_dir(directory, device="cpu", shortlist="on")
    assert translator.translate(["i see the cat"])[0] is not None
    assert json.dumps(translator.model_info["shortlist"])
    assert shortlist_main(["--model", str(directory), "--data-dir", str(tmp_path / "no")]) == 2


def test_the_recipe_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="must be >= 1"):
        ShortlistRecipe(per_source=0).check()
    with pytest.raises(ValueError, match="min_probability"):
        build_shortlist(
            EncodedSide.from_lists([[1]]),
            EncodedSide.from_lists([[1]]),
            None,  # type: ignore[arg-type]  # never reached
            None,  # type: ignore[arg-type]
            ShortlistRecipe(min_probability=1.5),
        )


def test_every_spelling_brings_its_capitalised_and_split_forms(
    tiny_tokenizers: Tokenizers,
) -> None:
    target = tiny_tokenizers.target
    pieces = target.pieces(range(target.vocab_size))
    word = next(i for i, piece in enumerate(pieces) if piece.startswith("▁") and len(piece) > 3)
    text = pieces[word][1:]
    (spellings,) = spelling_pieces(target, [word], 4)
    assert (
        set(target.encode(text[0].upper() + text[1:])) <= spellings
    )  # a sentence may start with it
    assert word in spellings and len(spellings) > 2  # and the pieces it splits into
    assert spelling_pieces(target, [EOS_ID], 4) == [{EOS_ID}]


def test_settings_name_a_bad_shortlist_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    assert_mode_setting(monkeypatch, "MT_SHORTLIST", "shortlist", " OFF ", "maybe")


@pytest.mark.anyio
async def test_get_model_and_mt_eval_report_the_shortlist(
    tmp_path: Path,
    tiny_model_dir: Path,
    tiny_tokenizers: Tokenizers,
    capsys: pytest.CaptureFixture[str],
) -> None:
    directory = tmp_path / "model"
    shutil.copytree(tiny_model_dir, directory)
    shortlist_of(tiny_tokenizers, list(range(4, 60))).save(directory / SHORTLIST_FILE)
    info, status = await model_info_and_translation(Settings(model_dir=directory, device="cpu"))
    assert info["shortlist"]["target_vocab_size"] == str(tiny_tokenizers.target.vocab_size)
    assert status == 200
    source = tmp_path / "test.en"
    source.write_text("I love the cat.\n", encoding="utf-8")
    reference = tmp_path / "test.vi"
    reference.write_text("tôi yêu con mèo.\n", encoding="utf-8")
    common = ["--model", str(directory), "--src", str(source), "--ref", str(reference), "--quiet"]
    for mode, reported in (("auto", True), ("off", False)):
        assert eval_main([*common, "--device", "cpu", "--shortlist", mode]) == 0
        assert (json.loads(capsys.readouterr().out)["shortlist"] is not None) is reported
