"""mt-translate and mt-eval: I/O formats, agreement with the Translator, clear errors."""

from __future__ import annotations

import io
import json
import select
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cli import translator_options
from cli.evaluate import main as eval_main
from cli.translate import main as translate_main
from model.evaluation import chrf, detokenized_bleu, moses_detokenize, tokenized_bleu
from model.store.locations import bundled_model_dir
from model.translator import Translator

LINES = ["I love the cat. The dog likes you!", "", "we see a big city today"]

# Stanford-style (Moses-tokenized, escaped) source and reference, and the raw reference.
SOURCE_TOKENIZED = [
    "I love the cat .",
    "the dog said &quot; hi &quot; .",
    "we see it &apos;s big .",
]
REFERENCE_TOKENIZED = ["tôi yêu con mèo .", "con chó nói &quot; chào &quot; .", "nó to ."]
REFERENCE_RAW = ["tôi yêu con mèo.", 'con chó nói "chào".', "nó to."]


@pytest.fixture(scope="module")
def translator(tiny_model_dir: Path) -> Translator:
    # the CLIs' default precision (--quantize auto: int8 on the CPU)
    return Translator.from_dir(tiny_model_dir, device="cpu", quantize="auto")


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_translate_file_to_file(
    tiny_model_dir: Path, translator: Translator, tmp_path: Path
) -> None:
    source = write_lines(tmp_path / "in.txt", LINES)
    output = tmp_path / "out.txt"
    model = ["--model", str(tiny_model_dir), "--device", "cpu", "--beam", "2"]
    status = translate_main([*model, "--input", str(source), "--output", str(output), "--quiet"])
    assert status == 0
    assert output.read_text(encoding="utf-8").splitlines() == translator.translate(LINES, beam=2)


def test_translate_stdin_to_stdout(
    tiny_model_dir: Path,
    translator: Translator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(LINES) + "\n"))
    assert translate_main(["--model", str(tiny_model_dir), "--device", "cpu", "--beam", "1"]) == 0
    assert capsys.readouterr().out.splitlines() == translator.translate(LINES, beam=1)


def test_n_best_output_format(
    tiny_model_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(LINES) + "\n"))
    # float32: the untrained model's outputs are near ties, and int8's per-batch activation
    # scales (stdin goes line by line, the check below in one batch) break ties differently.
    options = ["--device", "cpu", "--beam", "3", "--n-best", "2", "--quantize", "off"]
    status = translate_main(["--model", str(tiny_model_dir), *options])
    assert status == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert all(len(row) == 3 for row in rows)
    assert [int(row[0]) for row in rows] == [0, 0, 1, 1, 2, 2]
    best = Translator.from_dir(tiny_model_dir, device="cpu", quantize="off").translate(
        LINES, beam=3
    )
    for index in range(len(LINES)):
        alternatives = rows[2 * index : 2 * index + 2]
        scores = [float(row[1]) for row in alternatives]
        assert scores == sorted(scores, reverse=True)
        assert alternatives[0][2] == best[index]


def test_missing_model_directory_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert translate_main(["--model", str(tmp_path / "nope")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert error.startswith("mt-translate: error:") and "does not exist" in error


def test_unreadable_input_is_one_line_and_exit_2(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = ["--model", str(tiny_model_dir), "--device", "cpu"]
    assert translate_main([*model, "--input", str(tmp_path / "missing.txt")]) == 2
    assert "missing.txt" in capsys.readouterr().err
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("café\n".encode("latin-1"))
    assert translate_main([*model, "--input", str(latin1)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "not UTF-8" in error


def test_n_best_larger_than_beam_is_a_usage_error(tiny_model_dir: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        translate_main(["--model", str(tiny_model_dir), "--beam", "2", "--n-best", "3"])
    assert exit_info.value.code == 2


def test_block_loops_is_passed_on_and_checked(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = ["--model", str(tiny_model_dir), "--device", "cpu", "--beam", "2"]
    assert translate_main([*model, "--block-loops", "-1"]) == 2
    assert "--block-loops must be >= 0" in capsys.readouterr().err
    source = write_lines(tmp_path / "tst.en", SOURCE_TOKENIZED)
    reference = write_lines(tmp_path / "tst.vi", REFERENCE_TOKENIZED)
    files = ["--src", str(source), "--ref", str(reference), "--quiet"]
    assert eval_main([*model, *files, "--block-loops", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["block_loops"] == 0
    with pytest.raises(ValueError, match="block_loops"):  # and so is a model directory's value
        Translator.from_dir(tiny_model_dir, device="cpu", block_loops=-1)


def test_console_script_exits_2_without_traceback(tmp_path: Path) -> None:
    script = shutil.which("mt-translate")
    if script is None:
        pytest.skip("console script not installed (pip install -e .)")
    completed = subprocess.run(
        [script, "--model", str(tmp_path / "nope")],
        input="hello\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    assert completed.stderr.strip().count("\n") == 0


def test_eval_reports_all_scores_for_detokenized_source(
    tiny_model_dir: Path,
    translator: Translator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = write_lines(tmp_path / "tst.en", SOURCE_TOKENIZED)
    reference = write_lines(tmp_path / "tst.vi", REFERENCE_TOKENIZED)
    raw = write_lines(tmp_path / "raw.vi", REFERENCE_RAW)
    hypotheses_file = tmp_path / "hyp.vi"
    model = ["--model", str(tiny_model_dir), "--device", "cpu", "--beam", "2", "--quiet"]
    files = ["--src", str(source), "--ref", str(reference), "--raw-ref", str(raw)]
    status = eval_main([*model, *files, "--hypotheses", str(hypotheses_file)])
    assert status == 0
    report = json.loads(capsys.readouterr().out)
    assert report["src_tokenized"] is True
    assert report["sentences"] == 3
    assert report["block_loops"] == translator.block_loops == 4  # the loop guard's default
    assert report["sentences_per_second"] > 0
    assert report["workers"] >= 1 and report["torch_threads"] >= 1  # what the speed came from
    # the model saw natural text: the Moses-tokenized source was detokenized first
    hypotheses = hypotheses_file.read_text(encoding="utf-8").splitlines()
    assert hypotheses == translator.translate(moses_detokenize(SOURCE_TOKENIZED), beam=2)
    assert report["bleu_tokenized"] == round(tokenized_bleu(hypotheses, REFERENCE_TOKENIZED), 2)
    assert report["bleu_detokenized"] == round(detokenized_bleu(hypotheses, REFERENCE_RAW).score, 2)
    assert report["chrf"] == round(chrf(hypotheses, REFERENCE_RAW).score, 2)
    assert set(report["signatures"]) == {"bleu_tokenized", "bleu_detokenized", "chrf"}
    assert "tok:none" in report["signatures"]["bleu_tokenized"]


def test_eval_finds_the_raw_reference_next_to_a_stanford_reference(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_lines(tmp_path / "tst.en", SOURCE_TOKENIZED)
    reference = write_lines(tmp_path / "tst.vi", REFERENCE_TOKENIZED)
    (tmp_path / "raw").mkdir()
    raw = write_lines(tmp_path / "raw" / "tst.vi", REFERENCE_RAW)
    model = ["--model", str(tiny_model_dir), "--device", "cpu", "--beam", "1", "--quiet"]
    status = eval_main(
        [*model, "--src", str(source), "--ref", str(reference), "--no-src-tokenized"]
    )
    assert status == 0
    report = json.loads(capsys.readouterr().out)
    assert report["raw_ref"] == str(raw)
    assert report["src_tokenized"] is False
    assert report["chrf"] is not None


def test_eval_errors(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_lines(tmp_path / "tst.en", SOURCE_TOKENIZED)
    short_reference = write_lines(tmp_path / "short.vi", REFERENCE_TOKENIZED[:2])
    model = ["--model", str(tiny_model_dir), "--device", "cpu", "--quiet"]
    assert eval_main([*model, "--src", str(source), "--ref", str(short_reference)]) == 2
    assert "3 source lines but 2 reference lines" in capsys.readouterr().err
    assert eval_main([*model, "--src", str(tmp_path / "none.en"), "--ref", str(source)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert eval_main([*model, "--workers", "0", "--src", str(source), "--ref", str(source)]) == 2
    assert "--workers must be >= 1" in capsys.readouterr().err


class _LineByLineStdin:
    """A stdin that hands out one line per readline() and records what was written by then."""

    def __init__(self, lines: list[str], written: io.StringIO) -> None:
        self.lines = [line + "\n" for line in lines]
        self.written = written
        self.output_lines_at_each_read: list[int] = []

    def readline(self) -> str:
        self.output_lines_at_each_read.append(self.written.getvalue().count("\n"))
        return self.lines.pop(0) if self.lines else ""

    def read(self) -> str:  # pragma: no cover - reading everything at once is the bug
        raise AssertionError("mt-translate read all of stdin before answering")


def test_stdin_is_answered_line_by_line_before_the_next_line_is_read(
    tiny_model_dir: Path, translator: Translator, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = io.StringIO()
    stdin = _LineByLineStdin(LINES, written)
    monkeypatch.setattr("sys.stdin", stdin)
    monkeypatch.setattr("sys.stdout", written)
    assert translate_main(["--model", str(tiny_model_dir), "--device", "cpu", "--beam", "1"]) == 0
    # Before reading line k (and the final empty read), exactly k translations were written.
    assert stdin.output_lines_at_each_read == list(range(len(LINES) + 1))
    assert written.getvalue().splitlines() == translator.translate(LINES, beam=1)


def test_stdin_pipe_streams_each_translation_before_stdin_is_closed(
    tiny_model_dir: Path, translator: Translator
) -> None:
    """A real pipe: the first translation arrives while stdin is still open."""
    code = "import sys; from cli.translate import main; sys.exit(main())"
    process = subprocess.Popen(
        [sys.executable, "-c", code, "--model", str(tiny_model_dir), "--device", "cpu"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        cwd=Path(__file__).resolve().parents[1],
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write(LINES[0] + "\n")
        process.stdin.flush()
        ready, _, _ = select.select([process.stdout], [], [], 120)
        assert ready, "no translation within 120 s while stdin stayed open"
        first = process.stdout.readline().rstrip("\n")
        assert first == translator.translate([LINES[0]], beam=5)[0]
        process.stdin.write(LINES[2] + "\n")
        process.stdin.close()
        rest = process.stdout.read().splitlines()
        assert rest == translator.translate([LINES[2]], beam=5)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_model_defaults_to_the_bundled_model(
    tiny_model_dir: Path,
    translator: Translator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo_model = Path(__file__).resolve().parents[1] / "models" / "en-vi"
    assert repo_model == bundled_model_dir()
    # The tiny model stands in for the bundled one (cheaper to load); no --model given.
    monkeypatch.setattr(translator_options, "bundled_model_dir", lambda: tiny_model_dir)
    monkeypatch.setattr("sys.stdin", io.StringIO(LINES[0] + "\n"))
    assert translate_main(["--device", "cpu", "--beam", "1"]) == 0
    assert capsys.readouterr().out.splitlines() == translator.translate(LINES[:1], beam=1)


def test_bundled_model_directory_is_a_model() -> None:
    from model.store.checkpoint import read_model_config

    assert read_model_config(bundled_model_dir())["format"]


def test_model_that_is_a_file_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a_file = write_lines(tmp_path / "README.md", ["not a model"])
    assert translate_main(["--model", str(a_file)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "is a file, not a model directory" in error
