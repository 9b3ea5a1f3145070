"""mt-train never mixes two runs in one --out: it refuses a non-empty --out unless --resume or
--overwrite is given, and --overwrite only deletes what looks like a run directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.train import main
from training.run_dir import check_out_dir
from training.toy import write_toy_dataset

TOY_RECIPE = (
    "[model]\nembedding_size = 16\nhidden_size = 16\nencoder_layers = 1\n"
    "decoder_layers = 1\n[tokenizer]\nsource_vocab_size = 400\ntarget_vocab_size = 400\n"
    'model_type = "word"\n[data]\nmoses_detokenize = false\n'
    "[train]\nbatch_tokens = 200\nmax_steps = 4\neval_every = 2\nnum_threads = 1\n"
)


def evaluated_steps(run: Path) -> list[int]:
    lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["step"] for line in lines]


def test_second_run_into_the_same_out_is_refused_and_overwrite_starts_afresh(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_toy_dataset(tmp_path / "data", train_pairs=120, dev_pairs=10, seed=3)
    recipe = tmp_path / "toy.toml"
    recipe.write_text(TOY_RECIPE)
    run = tmp_path / "run"
    args = ["--config", str(recipe), "--data", str(tmp_path / "data"), "--out", str(run)]

    assert main(args) == 0
    first = evaluated_steps(run)
    assert first == sorted(first) and first
    metrics_before = (run / "metrics.jsonl").read_bytes()
    capsys.readouterr()

    assert main(args) == 2
    error = capsys.readouterr().err
    assert error.startswith("mt-train: error: --out ")
    assert "--resume" in error and "--overwrite" in error
    assert (run / "metrics.jsonl").read_bytes() == metrics_before  # untouched

    (run / "stale.txt").write_text("from the first run")
    assert main([*args, "--overwrite"]) == 0
    assert evaluated_steps(run) == first  # one run's steps, not two runs' zig-zag
    assert not (run / "stale.txt").exists()
    assert (run / "best" / "config.json").is_file()


def test_empty_or_missing_out_is_fine_and_resume_skips_the_check(tmp_path: Path) -> None:
    check_out_dir(tmp_path / "new", resume=None, overwrite=False)
    (tmp_path / "empty").mkdir()
    check_out_dir(tmp_path / "empty", resume=None, overwrite=False)
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("{}\n")
    check_out_dir(run, resume=str(run), overwrite=False)
    assert (run / "metrics.jsonl").is_file()
    with pytest.raises(FileExistsError, match="already holds a run"):
        check_out_dir(run, resume=None, overwrite=False)


def test_overwrite_refuses_a_directory_that_is_not_a_run(tmp_path: Path) -> None:
    other = tmp_path / "home"
    other.mkdir()
    (other / "notes.txt").write_text("precious")
    with pytest.raises(FileExistsError, match="not a run directory"):
        check_out_dir(other, resume=None, overwrite=True)
    assert (other / "notes.txt").read_text() == "precious"


def test_overwrite_refuses_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "metrics.jsonl").write_text("{}\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileExistsError, match="current directory"):
        check_out_dir(".", resume=None, overwrite=True)
    assert (tmp_path / "metrics.jsonl").is_file()


def test_out_that_is_a_file_is_an_error(tmp_path: Path) -> None:
    a_file = tmp_path / "run"
    a_file.write_text("x")
    with pytest.raises(FileExistsError, match="is a file"):
        check_out_dir(a_file, resume=None, overwrite=False)


def test_resume_and_overwrite_are_exclusive(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--config", "c", "--data", "d", "--out", "o", "--resume", "o", "--overwrite"])
    assert exit_info.value.code == 2
