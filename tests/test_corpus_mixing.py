"""Training on several corpora: recipes, weighted mixing, and one dev score per corpus."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cli.train import main as train_main
from model.nn.config import ConfigError
from model.store.checkpoint import load_model
from training.config import config_from_dict, load_config, parse_corpus_option
from training.data import CleanCorpus
from training.mixing import mix_corpora, sample_indices
from training.plot import read_metrics
from training.retrain import RetrainRequest
from training.toy import write_toy_dataset

REPO = Path(__file__).resolve().parents[1]

TOY_RECIPE = (
    "[model]\nembedding_size = 16\nhidden_size = 16\nencoder_layers = 1\ndecoder_layers = 1\n"
    "input_feeding = false\n"
    '[tokenizer]\nsource_vocab_size = 400\ntarget_vocab_size = 400\nmodel_type = "word"\n'
    "[data]\nmoses_detokenize = false\n"
    "[train]\nbatch_tokens = 200\nmax_steps = 4\neval_every = 2\nnum_threads = 1\n"
)


NAMED_CORPORA = {
    "distill-en-vi.toml": ["software", "distilled"],
    "bt-vi-en.toml": ["software", "back_translated"],
    "everyday-en-vi.toml": ["software", "distilled", "everyday", "vocabulary", "usage"],
    "everyday-vi-en.toml": ["software", "distilled", "everyday", "vocabulary", "usage"],
}


def test_recipes_name_corpora_and_old_recipes_are_unchanged(tmp_path: Path) -> None:
    recipe = tmp_path / "mix.toml"
    recipe.write_text(
        TOY_RECIPE + '[[corpora]]\nname = "software"\ndir = "$CORPUS_HOME/software"\n'
        "weight = 0.25\nmax_dev_pairs = 300\n",
        encoding="utf-8",
    )
    config = load_config(recipe, corpora=["docs=/data/docs:2", "faq=/data/f:aq"])
    assert [(c.name, c.dir, c.weight) for c in config.corpora] == [
        ("software", "$CORPUS_HOME/software", 0.25),
        ("docs", "/data/docs", 2.0),
        ("faq", "/data/f:aq", 1.0),  # not a number after the colon: part of the folder
    ]
    assert config.corpora[0].dev_prefix == "dev" and config.corpora[0].max_dev_pairs == 300
    assert config_from_dict(config.to_dict()) == config
    for shipped in sorted((REPO / "configs").glob("*.toml")):
        loaded = load_config(shipped)
        named = NAMED_CORPORA.get(shipped.name)
        if named is not None:  # the recipes that continue a model on extra corpora
            assert [c.name for c in loaded.corpora] == named
            assert loaded.corpora[1].dev_prefix == ""  # their sources or targets are TED's
            continue
        assert loaded.corpora == () and "corpora" not in loaded.to_dict()


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ([{"name": "Soft Ware", "dir": "x"}], "use a-z"),
        ([{"name": "a"}], "dir is required"),
        ([{"name": "a", "dir": "x", "weight": -1}], "weight must be >= 0"),
        ([{"name": "a", "dir": "x"}, {"name": "a", "dir": "y"}], "once"),
        ([{"name": "a", "dir": "x", "wieght": 1.0}], "unknown setting"),
        ({"name": "a"}, "array of tables"),
    ],
)
def test_bad_corpora_are_refused(tables: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"corpora": tables})
    with pytest.raises(ConfigError, match="NAME=DIR"):
        parse_corpus_option("no-equals-sign")


def test_weights_repeat_small_corpora_and_thin_large_ones() -> None:
    picked = sample_indices(4, 10, seed=3)
    assert sorted(np.bincount(picked, minlength=4)) == [2, 2, 3, 3]
    assert np.array_equal(picked, sample_indices(4, 10, seed=3))
    thinned = sample_indices(100, 10, seed=3)
    assert len(set(thinned.tolist())) == 10
    assert len(sample_indices(0, 10, seed=3)) == 0

    main = CleanCorpus([f"m{i}" for i in range(8)], [f"v{i}" for i in range(8)], "main")
    extra = CleanCorpus(["s0", "s1", "s2"], ["t0", "t1", "t2"], "extra")
    corpus = config_from_dict({"corpora": [{"name": "software", "dir": "x", "weight": 0.5}]})
    mixed = mix_corpora(main, [(corpus.corpora[0], extra)], seed=1)
    assert mixed.pairs_per_corpus == {"main": 8, "software": 4}
    assert mixed.corpus.sources[:8] == main.sources
    added = mixed.corpus.sources[8:]
    assert len(added) == 4 and set(added) == {"s0", "s1", "s2"}  # all, then one again
    pairs = zip(mixed.corpus.sources, mixed.corpus.targets, strict=True)
    assert all(source[1:] == target[1:] for source, target in pairs)  # still aligned
    other = mix_corpora(main, [(corpus.corpora[0], extra)], seed=2)
    assert other.corpus.digest != mixed.corpus.digest
    assert mix_corpora(main, [], seed=1).corpus is main  # one corpus: as it always was
    scored_only = config_from_dict({"corpora": [{"name": "software", "dir": "x", "weight": 0}]})
    alone = mix_corpora(main, [(scored_only.corpora[0], extra)], seed=1)
    assert alone.corpus.sources == main.sources and alone.pairs_per_corpus["software"] == 0


def _write_software_corpus(directory: Path) -> None:
    """A second toy corpus laid out as mt-corpus writes it: train.* and dev.*."""
    write_toy_dataset(directory, train_pairs=60, dev_pairs=12, seed=5)
    for lang in ("en", "vi"):
        (directory / f"tst2012.{lang}").rename(directory / f"dev.{lang}")


def test_training_mixes_corpora_and_scores_each_dev_set(tmp_path: Path) -> None:
    write_toy_dataset(tmp_path / "ted", train_pairs=120, dev_pairs=10, seed=1)
    _write_software_corpus(tmp_path / "software")
    recipe = tmp_path / "toy.toml"
    recipe.write_text(TOY_RECIPE, encoding="utf-8")
    code = train_main(
        [
            "--config",
            str(recipe),
            "--data",
            str(tmp_path / "ted"),
            "--corpus",
            f"software={tmp_path / 'software'}:0.5",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    assert code == 0
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert [r["step"] for r in records] == [2, 4]
    for record in records:
        assert {"dev_bleu", "dev_loss", "dev_bleu_software", "dev_loss_software"} <= set(record)
        assert record["dev_loss_software"] > 0 and record["dev_loss_software"] != record["dev_loss"]
    data = load_model(tmp_path / "run" / "last").metadata["data"]
    assert data["mixed_pairs"] == {"main": 120, "software": 60}
    assert data["corpus_dev_pairs"] == {"software": 12}
    saved = json.loads((tmp_path / "run" / "config.json").read_text(encoding="utf-8"))
    assert saved["corpora"][0]["weight"] == 0.5


def test_mt_retrain_takes_the_same_corpora() -> None:
    from cli.retrain import build_parser, request_from_args

    args = build_parser().parse_args(
        ["--models-root", "m", "--data", "d", "--corpus", "software=data/software:0.3"]
    )
    request = request_from_args(args)
    assert isinstance(request, RetrainRequest) and request.corpora == ["software=data/software:0.3"]
