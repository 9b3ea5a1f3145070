"""mt-train as a person meets it: ``--resume DIR`` alone continues a run with what the run
recorded, Ctrl-C ends without a traceback and says how to continue, and a data folder without
the corpus files is one line that says what it must hold."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cli.common import ExitCode
from cli.train import main
from tests.test_train_out_dir import TOY_RECIPE, evaluated_steps
from training.toy import write_toy_dataset

INTERRUPTED = ExitCode.INTERRUPTED

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def toy(tmp_path: Path) -> Path:
    """A folder with the toy data (``data/``) and recipe (``toy.toml``)."""
    write_toy_dataset(tmp_path / "data", train_pairs=120, dev_pairs=10, seed=3)
    (tmp_path / "toy.toml").write_text(TOY_RECIPE)
    return tmp_path


def test_resume_alone_continues_with_the_recorded_recipe_and_data(
    toy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(toy)  # relative --data and --out, as a person types them
    assert main(["--config", "toy.toml", "--data", "data", "--out", "run"]) == 0
    assert evaluated_steps(toy / "run") == [2, 4]
    recorded = json.loads((toy / "run" / "inputs.json").read_text())
    assert recorded["data_dir"] == str((toy / "data").resolve())

    elsewhere = toy / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["--resume", str(toy / "run"), "--set", "train.max_steps=6"]) == 0
    assert evaluated_steps(toy / "run") == [2, 4, 6]
    # the run's last/ names the same run
    assert main(["--resume", str(toy / "run" / "last"), "--set", "train.max_steps=8"]) == 0
    assert evaluated_steps(toy / "run") == [2, 4, 6, 8]


def test_a_new_run_without_its_inputs_says_which_are_missing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--data", "somewhere"])
    assert exit_info.value.code == 2
    assert "a new run needs --config, --out (or --resume DIR" in capsys.readouterr().err


def test_a_run_from_before_the_folders_were_recorded_asks_for_data(
    toy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = toy / "run"
    assert (
        main(["--config", str(toy / "toy.toml"), "--data", str(toy / "data"), "--out", str(run)])
        == 0
    )
    (run / "inputs.json").unlink()
    capsys.readouterr()
    assert main(["--resume", str(run)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "pass --data DIR" in error
    assert (
        main(["--resume", str(run), "--data", str(toy / "data"), "--set", "train.max_steps=6"]) == 0
    )


def _without_dev_reference(data: Path) -> None:
    write_toy_dataset(data, train_pairs=5, dev_pairs=2)
    (data / "tst2012.vi").unlink()


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda data: None, "no such folder"),
        (Path.mkdir, "none of them is in it"),
        (_without_dev_reference, "no tst2012.vi in it"),
    ],
)
def test_a_data_folder_without_the_corpus_is_one_line_saying_what_it_must_hold(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make: Callable[[Path], None],
    problem: str,
) -> None:
    data = tmp_path / "data"
    make(data)
    recipe = tmp_path / "toy.toml"
    recipe.write_text(TOY_RECIPE)
    assert main(["--config", str(recipe), "--data", str(data), "--out", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert f"data folder {data}: {problem}; it must hold train.en, train.vi, tst2012.en" in error
    assert not (tmp_path / "run").exists()


def test_ctrl_c_says_how_to_continue_and_the_run_continues(
    toy: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import training.loop

    real_step = training.loop.train_step
    calls = {"n": 0}

    def interrupted_at_step_3(*args: object, **kwargs: object) -> tuple[float, float]:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(training.loop, "train_step", interrupted_at_step_3)
    run = toy / "run"
    args = ["--config", str(toy / "toy.toml"), "--data", str(toy / "data"), "--out", str(run)]
    assert main(args) == INTERRUPTED
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1] == (
        f"mt-train: interrupted; continue from its last evaluation (step 2) with: "
        f"mt-train --resume {run}"
    )
    monkeypatch.setattr(training.loop, "train_step", real_step)
    assert main(["--resume", str(run)]) == 0
    assert evaluated_steps(run) == [2, 4]


def test_ctrl_c_before_anything_was_saved_says_to_start_again(
    toy: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import training.loop

    def interrupted(*args: object, **kwargs: object) -> tuple[float, float]:
        raise KeyboardInterrupt

    monkeypatch.setattr(training.loop, "train_step", interrupted)
    run = toy / "run"
    args = ["--config", str(toy / "toy.toml"), "--data", str(toy / "data"), "--out", str(run)]
    assert main(args) == INTERRUPTED
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("mt-train: interrupted before the first evaluation saved the run")
    assert "--overwrite" in last


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_sigint_ends_a_real_run_without_a_traceback(toy: Path) -> None:
    """The signal a terminal sends on Ctrl-C, to a real mt-train process."""
    run = toy / "run"
    recipe = TOY_RECIPE.replace("max_steps = 4", "max_steps = 100000")
    (toy / "long.toml").write_text(recipe)
    command = [sys.executable, "-m", "cli.train", "--config", str(toy / "long.toml")]
    command += ["--data", str(toy / "data"), "--out", str(run)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a shell without job control starts background commands with SIGINT ignored, and a
        # child inherits that; the terminal's Ctrl-C is what this test is about
        preexec_fn=_default_sigint,
    )
    try:
        deadline = time.monotonic() + 120
        while not (run / "last" / "training_state.json").is_file():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no evaluation saved in time"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == INTERRUPTED, stderr
    assert "Traceback" not in stderr, stderr
    assert stderr.strip().splitlines()[-1].endswith(f"with: mt-train --resume {run}")
