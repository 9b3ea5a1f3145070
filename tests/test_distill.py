"""Sequence-level distillation: ``mt-distill`` writes a corpus that training mixes in."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.distill import main as distill_main
from cli.train import main as train_main
from model.store.checkpoint import load_model
from tests.test_corpus_mixing import TOY_RECIPE
from training.data import ParallelDataError, read_lines
from training.distill import corpus_sources, distill
from training.plot import read_metrics
from training.toy import write_toy_dataset


class UpperCase:
    """A stand-in teacher that records what it was asked to translate."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def translate(self, texts: list[str], beam: int = 5) -> list[str]:
        self.calls.append(list(texts))
        return [f"{text.upper()}\n(two lines)" for text in texts]


SOURCES = [f"sentence {number}" for number in range(7)]


def test_one_line_per_source_a_chunk_at_a_time(tmp_path: Path) -> None:
    teacher = UpperCase()
    seen: list[tuple[int, int]] = []
    count = distill(
        teacher,
        SOURCES,
        tmp_path / "train.en",
        tmp_path / "train.vi",
        5,
        3,
        lambda done, total: seen.append((done, total)),
    )
    assert count == 7 and [len(call) for call in teacher.calls] == [3, 3, 1]
    assert seen == [(3, 7), (6, 7), (7, 7)]
    assert read_lines(tmp_path / "train.en") == SOURCES
    assert read_lines(tmp_path / "train.vi") == [f"SENTENCE {n} (two lines)" for n in range(7)]


def test_a_stopped_run_continues_where_it_stopped(tmp_path: Path) -> None:
    distill(UpperCase(), SOURCES, tmp_path / "whole.en", tmp_path / "whole.vi", chunk=3)
    (tmp_path / "train.en").write_text("".join(s + "\n" for s in SOURCES), encoding="utf-8")
    partial = read_lines(tmp_path / "whole.vi")[:3]
    (tmp_path / "train.vi").write_text("".join(s + "\n" for s in partial), encoding="utf-8")
    teacher = UpperCase()
    assert distill(teacher, SOURCES, tmp_path / "train.en", tmp_path / "train.vi", chunk=3) == 4
    assert teacher.calls == [SOURCES[3:6], SOURCES[6:]]
    assert read_lines(tmp_path / "train.vi") == read_lines(tmp_path / "whole.vi")


def test_a_line_cut_short_by_a_stop_is_translated_again(tmp_path: Path) -> None:
    distill(UpperCase(), SOURCES, tmp_path / "whole.en", tmp_path / "whole.vi")
    (tmp_path / "train.en").write_text("".join(s + "\n" for s in SOURCES), encoding="utf-8")
    (tmp_path / "train.vi").write_text("SENTENCE 0 (two lines)\nSENTEN", encoding="utf-8")
    teacher = UpperCase()
    assert distill(teacher, SOURCES, tmp_path / "train.en", tmp_path / "train.vi") == 6
    assert teacher.calls == [SOURCES[1:]]
    assert read_lines(tmp_path / "train.vi") == read_lines(tmp_path / "whole.vi")


def test_translations_of_other_sources_are_never_continued(tmp_path: Path) -> None:
    distill(UpperCase(), SOURCES[:2], tmp_path / "train.en", tmp_path / "train.vi")
    with pytest.raises(ParallelDataError, match="other sources"):
        distill(UpperCase(), SOURCES, tmp_path / "train.en", tmp_path / "train.vi")
    with pytest.raises(ValueError, match="chunk"):
        distill(UpperCase(), SOURCES, tmp_path / "a.en", tmp_path / "a.vi", chunk=0)


def test_sources_are_read_as_training_reads_them(tmp_path: Path) -> None:
    (tmp_path / "train.en").write_text(
        "I &apos;m here .\nIt costs 5 dollars , I think .\n", encoding="utf-8"
    )
    assert corpus_sources(tmp_path, "train", "en") == ["I'm here.", "It costs 5 dollars, I think."]
    (tmp_path / "natural.en").write_text("It is 5 p.m. here\n", encoding="utf-8")
    assert corpus_sources(tmp_path, "natural", "en") == ["It is 5 p.m. here"]


def test_a_distilled_corpus_trains_beside_the_original(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    write_toy_dataset(tmp_path / "ted", train_pairs=40, dev_pairs=6, seed=1)
    out = tmp_path / "distilled"
    teachers = ["--teacher", str(tiny_model_dir), "--teacher", str(tiny_model_dir)]
    arguments = [*teachers, "--data", str(tmp_path / "ted"), "--out", str(out), "--beam", "2"]
    assert distill_main([*arguments, "--chunk", "16", "--device", "cpu"]) == 0
    assert read_lines(out / "train.en") == read_lines(tmp_path / "ted" / "train.en")
    assert len(read_lines(out / "train.vi")) == 40
    recipe = tmp_path / "toy.toml"
    recipe.write_text(
        TOY_RECIPE + f'[[corpora]]\nname = "distilled"\ndir = "{out}"\ndev_prefix = ""\n',
        encoding="utf-8",
    )
    code = train_main(
        ["--config", str(recipe), "--data", str(tmp_path / "ted"), "--out", str(tmp_path / "run")]
    )
    assert code == 0
    data = load_model(tmp_path / "run" / "last").metadata["data"]
    assert data["mixed_pairs"] == {"main": 40, "distilled": 40}
    assert all(
        "dev_bleu_distilled" not in r for r in read_metrics(tmp_path / "run" / "metrics.jsonl")
    )


def test_a_teacher_that_is_not_a_model_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_toy_dataset(tmp_path / "ted", train_pairs=4, dev_pairs=2, seed=1)
    code = distill_main(
        ["--teacher", str(tmp_path), "--data", str(tmp_path / "ted"), "--out", str(tmp_path / "o")]
    )
    assert code == 2
    assert capsys.readouterr().err.startswith("mt-distill: error:")
