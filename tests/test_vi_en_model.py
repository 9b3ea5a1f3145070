"""A Vietnamese→English model end to end: trained a few steps on the toy corpus read in
reverse, it names its languages, and mt-translate, mt-eval, mt-tune-decoding, mt-average and
mt-retrain work in its direction; models that do not name theirs load as English→Vietnamese."""

from __future__ import annotations

import json
import runpy
import sys
import unicodedata
from pathlib import Path

import pytest

from cli.average import main as average_main
from cli.evaluate import main as eval_main
from cli.retrain import main as retrain_main
from cli.translate import main as translate_main
from cli.tune_decoding import main as tune_main
from model.evaluation import moses_tokenize, repeated_words, tokenized_bleu
from model.store.checkpoint import load_model
from model.store.languages import model_pair
from model.translator import Translator
from tests.test_retrain import FAST
from training.config import config_from_dict
from training.toy import write_toy_dataset
from training.train import train

REPO = Path(__file__).resolve().parents[1]
LINES = [
    unicodedata.normalize("NFD", "tôi thấy con mèo"),
    "TÔI THÍCH QUYỂN SÁCH ĐỎ",
    "tôi thấy 3 con chó lúc 3:30 tại %s",
    "",
]


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The toy corpus (``train``/``tst2012``, ``.en`` and ``.vi``), read here vi -> en."""
    directory = tmp_path_factory.mktemp("toy-vi-en")
    write_toy_dataset(directory, train_pairs=120, dev_pairs=10, seed=5)
    return directory


@pytest.fixture(scope="module")
def vi_en_model(toy_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny seeded Vietnamese→English model, four optimisation steps."""
    config = config_from_dict(
        {
            "model": {"embedding_size": 16, "hidden_size": 16, "input_feeding": False},
            "tokenizer": {"source_vocab_size": 400, "target_vocab_size": 400},
            "data": {
                "source_lang": "vi",
                "target_lang": "en",
                "moses_detokenize": False,
                "strip_tones_prob": 0.1,
            },
            "train": {"batch_tokens": 200, "max_steps": 4, "eval_every": 2, "num_threads": 1},
        }
    )
    return train(config, toy_data, tmp_path_factory.mktemp("run-vi-en")).best_dir


def test_a_vi_en_run_names_its_languages(vi_en_model: Path) -> None:
    loaded = load_model(vi_en_model)
    assert loaded.metadata["source_language"] == "vi"
    assert loaded.metadata["target_language"] == "en"
    assert loaded.languages == ("vi", "en")
    assert loaded.metadata["data"]["languages"] == ["vi", "en"]
    translator = Translator(loaded, device="cpu")
    assert translator.languages == translator.pipeline.languages == ("vi", "en")
    assert translator.model_info["target_language"] == "en"


def test_models_without_languages_load_as_english_to_vietnamese(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert model_pair({}) == model_pair({"metadata": {}}) == ("en", "vi")
    loaded = load_model(tiny_model_dir)
    assert "source_language" not in loaded.metadata and loaded.languages == ("en", "vi")
    assert Translator(loaded, device="cpu").pipeline.languages == ("en", "vi")
    # an export writes the direction out, so the shipped model names it
    out = tmp_path / "exported"
    argv = ["export_model.py", str(tiny_model_dir), str(out), "--version", "old-1"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_status:
        runpy.run_path(str(REPO / "scripts" / "export_model.py"), run_name="__main__")
    assert exit_status.value.code == 0
    metadata = load_model(out).metadata
    assert (metadata["source_language"], metadata["target_language"]) == ("en", "vi")


def test_mt_translate_translates_in_the_models_direction(vi_en_model: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.vi"
    source.write_text("".join(line + "\n" for line in LINES), encoding="utf-8")
    output = tmp_path / "out.en"
    model = ["--model", str(vi_en_model), "--device", "cpu", "--beam", "1", "--quiet"]
    assert translate_main([*model, "--input", str(source), "--output", str(output)]) == 0
    lines = output.read_text(encoding="utf-8").splitlines()
    translator = Translator.from_dir(vi_en_model, device="cpu", quantize="auto")
    assert lines == translator.translate(LINES, beam=1)
    composed = unicodedata.normalize("NFC", LINES[0])
    assert lines[0] == translator.translate([composed], beam=1)[0]  # NFD reads as NFC
    assert lines[1] and lines[1] == lines[1].upper()  # answered in capitals
    assert "3:30" in lines[2] and "%s" in lines[2]  # carried across, never translated
    assert lines[3] == ""


def test_mt_eval_scores_in_the_target_language(
    vi_en_model: Path, toy_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hypotheses_file = tmp_path / "hyp.en"
    model = ["--model", str(vi_en_model), "--device", "cpu", "--beam", "1", "--quiet"]
    files = ["--src", str(toy_data / "tst2012.vi"), "--ref", str(toy_data / "tst2012.en")]
    assert eval_main([*model, *files, "--hypotheses", str(hypotheses_file)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["source_language"], report["target_language"]) == ("vi", "en")
    hypotheses = hypotheses_file.read_text(encoding="utf-8").splitlines()
    references = (toy_data / "tst2012.en").read_text(encoding="utf-8").splitlines()
    expected = tokenized_bleu(hypotheses, moses_tokenize(references, "en"), "en")
    assert report["bleu_tokenized"] == round(expected, 2)
    assert report["bleu_detokenized"] is not None and report["chrf"] is not None
    assert set(report["signatures"]) == {"bleu_tokenized", "bleu_detokenized", "chrf"}


def test_tune_decoding_reads_the_dev_set_in_the_models_direction(
    vi_en_model: Path, toy_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "dev"
    data.mkdir()
    sources = (toy_data / "tst2012.vi").read_text(encoding="utf-8").splitlines()[:4]
    # English references with stutters the Vietnamese side lacks: they show which file is
    # the reference
    references = ["the the dog", "a a cat", "i see", "they like like it"]
    (data / "tst2012.vi").write_text("".join(s + "\n" for s in sources), encoding="utf-8")
    (data / "tst2012.en").write_text("".join(r + "\n" for r in references), encoding="utf-8")
    grid = ["--beams", "1", "--length-penalties", "1.0", "--blocks", "0"]
    assert tune_main(["--model", str(vi_en_model), "--data", str(data), *grid]) == 0
    decoding = json.loads(capsys.readouterr().out)
    assert decoding["dev_sentences"] == 4
    assert decoding["dev_reference_repeated_words"] == repeated_words(references) == 3


def test_averaging_keeps_the_direction(vi_en_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "averaged"
    assert average_main(["--out", str(out), str(vi_en_model), str(vi_en_model)]) == 0
    assert load_model(out).languages == ("vi", "en")


def test_mt_retrain_trains_in_the_current_models_direction(
    vi_en_model: Path, toy_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "models"
    assert (
        retrain_main(["--models-root", str(root), "--init-only", "--base-model", str(vi_en_model)])
        == 0
    )
    report_path = tmp_path / "report.json"
    common = ["--models-root", str(root), "--data", str(toy_data), *FAST]
    reversed_recipe = ["--set", "data.source_lang=en", "--set", "data.target_lang=vi"]
    assert retrain_main([*common, *reversed_recipe, "--report", str(report_path)]) == 2
    assert "translates vi into en" in capsys.readouterr().err

    code = retrain_main(
        [*common, "--dry-run", "--max-bleu-drop", "1000", "--report", str(report_path)]
    )
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert code == 0, report
    assert report["evaluation"]["reference"].endswith("tst2012.en")
    assert report["evaluation"]["source"].endswith("tst2012.vi")
    assert load_model(report["candidate"]["dir"]).languages == ("vi", "en")
