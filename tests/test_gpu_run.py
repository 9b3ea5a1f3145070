"""scripts/gpu-run.sh: the limits it checks, its GPU plan, and a CPU rehearsal of the whole run.

The rehearsal (``slow``, ``data``) runs ``scripts/gpu-run.sh --rehearse`` with ``OUT`` in a
temporary folder, so the script cannot rot between GPU sessions, and checks what it leaves
under ``OUT`` against what the device tool returns (8 files, 16 MiB each, 64 MiB in all).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024


def load_driver() -> None:
    """The package ``scripts/gpu_run`` as ``gpu_run`` (``scripts`` itself is no package)."""
    package = REPO / "scripts" / "gpu_run"
    spec = importlib.util.spec_from_file_location(
        "gpu_run", package / "__init__.py", submodule_search_locations=[str(package)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_run"] = module  # its modules import one another through it
    spec.loader.exec_module(module)


load_driver()
limits = importlib.import_module("gpu_run.limits")
plans = importlib.import_module("gpu_run.plans")
steps = importlib.import_module("gpu_run.steps")
wheels = importlib.import_module("gpu_run.wheels")
files = importlib.import_module("gpu_run.files")
Runner = importlib.import_module("gpu_run.runner").Runner
is_git_ignored = files.is_git_ignored


def test_out_problems_names_what_would_not_come_back(tmp_path: Path) -> None:
    for index in range(9):
        (tmp_path / f"f{index}.txt").write_text("x")
    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    (deep / "deep.txt").write_text("x")
    (tmp_path / "a" / "bad name.txt").write_bytes(b"x")
    with (tmp_path / "big.bin").open("wb") as handle:
        handle.truncate(17 * MIB)
    problems = limits.out_problems(tmp_path)
    assert any("12 files" in p for p in problems)
    assert any(p.startswith("big.bin") and "16 MiB" in p for p in problems)
    assert any("a/b/c/deep.txt" in p and "folders down" in p for p in problems)
    assert any("bad name.txt" in p for p in problems)


def test_out_problems_accepts_what_fits(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    (tmp_path / "results.tar.gz").write_bytes(b"x" * 1000)
    assert limits.out_problems(tmp_path) == []


def test_model_problems_checks_shards_and_total(tmp_path: Path) -> None:
    for index in range(4):
        with (tmp_path / f"weights-{index}.safetensors").open("wb") as handle:
            handle.truncate(12 * MIB)
    assert limits.model_problems(tmp_path) == ["model 48.0 MiB (at most 45 MiB)"]
    with (tmp_path / "weights-0.safetensors").open("wb") as handle:
        handle.truncate(16 * MIB)
    assert any("shards at most 15 MiB" in p for p in limits.model_problems(tmp_path))


def test_results_tar_keeps_the_end_of_long_logs(tmp_path: Path) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "summary.json").write_text('{"ok": true}')
    long_log = "".join(f"line {i}\n" for i in range(400_000)).encode()
    assert len(long_log) > limits.TAR_MEMBER_BYTES
    (folder / "train.log").write_bytes(long_log)
    target = tmp_path / "results.tar.gz"
    limits.write_tar(target, folder)
    with tarfile.open(target) as archive:
        assert sorted(archive.getnames()) == ["summary.json", "train.log"]
        log = archive.extractfile("train.log")
        assert log is not None
        kept = log.read()
    assert kept.endswith(b"line 399999\n")
    assert b"start cut" in kept and len(kept) < limits.TAR_MEMBER_BYTES + 100


def test_the_gpu_plan_fits_nine_minutes() -> None:
    """Training gets what the other steps' shares leave of the deadline; each step's least
    time is within its share; the deadline leaves room under 9 minutes for a kill's grace."""
    plan = plans.gpu_plan()
    shares = plans.GPU_STEP_S
    assert plan.train_minutes * 60 + sum(shares.values()) <= plan.deadline_s
    assert plan.train_minutes * 60 + sum(shares.values()) + 15 > plan.deadline_s  # all used
    assert all(least <= shares[step] for step, least in plan.minimum_s.items())
    assert plan.deadline_s + 5 + 2 + 5 < 9 * 60  # SIGINT's grace, SIGKILL's, the last tar
    assert plans.gpu_plan(train_minutes=2.0).train_minutes == 2.0
    assert plan.device == "cuda" and plan.decode.batch_sizes.split(",") == ["1024", "4096"]
    assert plan.serve_clients.split(",") == ["128", "256"]


def test_the_run_trains_on_the_software_corpus_as_prepared(tmp_path: Path) -> None:
    """The training command mixes in each corpus from the unpacked data, at the weight the
    carried folder was prepared with; a folder prepared with other corpora is refused."""
    plan = plans.gpu_plan()
    runner = Runner(tmp_path / "out", tmp_path / "work", plan, "gpu")
    argv = steps._train_argv(runner, tmp_path / "device", plan.train_minutes)
    corpus = argv[argv.index("--corpus") + 1]
    assert corpus == f"software={tmp_path / 'work' / 'data' / 'software'}:0.3"
    (tmp_path / "spm").mkdir()
    for name in ("source.spm", "target.spm"):
        (tmp_path / "spm" / name).write_bytes(b"x")
    manifest = {"recipe": plan.recipe, "corpora": {"software": 0.3}}
    assert steps.manifest_problem(manifest, plan, tmp_path) is None
    problem = steps.manifest_problem({**manifest, "corpora": {}}, plan, tmp_path)
    assert problem is not None and "prepared with the corpora {}" in problem


def test_a_trimmed_wheel_keeps_the_rest_and_its_record(tmp_path: Path) -> None:
    import zipfile

    wheel = tmp_path / "swagger_ui_py-1.0-py3-none-any.whl"
    kept = ["swagger_ui/__init__.py", "swagger_ui/static/swagger-ui-bundle.js"]
    dropped = ["swagger_ui/static/swagger-editor.js", "swagger_ui/static/swagger-ui.js.map"]
    record = "swagger_ui_py-1.0.dist-info/RECORD"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name in kept + dropped:
            archive.writestr(name, f"content of {name}")
        archive.writestr(record, "".join(f"{n},sha256=x,1\n" for n in [*kept, *dropped, record]))
    wheels.trim_wheel(wheel, wheels.LEFT_OUT["swagger-ui-py"])
    with zipfile.ZipFile(wheel) as archive:
        assert sorted(archive.namelist()) == sorted([*kept, record])
        assert archive.read(kept[1]) == f"content of {kept[1]}".encode()
        listed = [line.split(",")[0] for line in archive.read(record).decode().splitlines()]
    assert listed == [*kept, record]


def test_the_inputs_archive_unpacks_what_was_packed(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("TED\n")
    (tmp_path / "b.json").write_text('{"sources": []}')
    archive = tmp_path / "device" / "inputs.tar.xz"
    files.pack_xz(
        archive, [(tmp_path / "a.txt", "data/train.en"), (tmp_path / "b.json", "cache/c.json")]
    )
    files.unpack(archive, tmp_path / "work")
    assert (tmp_path / "work" / "data" / "train.en").read_text() == "TED\n"
    assert (tmp_path / "work" / "cache" / "c.json").read_text() == '{"sources": []}'


def test_the_gpu_width_exports_under_45_mib() -> None:
    """The recipe's width as the run overrides it: fp16 weights under 45 MiB, 8K/8K pieces."""
    import torch

    from model.nn.seq2seq import Seq2Seq
    from training.config import load_config

    config = load_config(REPO / plans.GPU_RECIPE, list(plans.GPU_SETS))
    with torch.device("meta"):
        model = Seq2Seq(config.model_config(8000, 8000))
    fp16_bytes = 2 * sum(p.numel() for p in model.parameters())
    assert fp16_bytes + 1 * MIB <= limits.MAX_MODEL_BYTES


def test_a_folder_prepared_for_another_recipe_is_refused(tmp_path: Path) -> None:
    plan = plans.gpu_plan(train_minutes=4.5, deadline_s=525.0)
    (tmp_path / "spm").mkdir()
    corpora = {"corpora": {"software": 0.3}}
    problem = steps.manifest_problem({"recipe": "configs/tiny.toml", **corpora}, plan, tmp_path)
    assert problem is not None and "prepared for configs/tiny.toml" in problem
    problem = steps.manifest_problem({"recipe": plan.recipe, **corpora}, plan, tmp_path)
    assert problem is not None and "source.spm is missing" in problem
    for name in ("source.spm", "target.spm"):
        (tmp_path / "spm" / name).write_bytes(b"x")
    assert steps.manifest_problem({"recipe": plan.recipe, **corpora}, plan, tmp_path) is None


def test_a_training_that_fails_early_is_retried_once_in_fp32(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CUDA or bf16 failure at start must not cost the run its model: one fp32 retry with
    the time left, and the summary says so."""
    plan = plans.gpu_plan(train_minutes=4.5, deadline_s=525.0)
    runner = Runner(tmp_path / "out", tmp_path / "work", plan, "gpu")
    (runner.results / "train.log").write_text("")
    calls: list[tuple[list[str], float]] = []

    def fake_command(step: str, argv: list[str], timeout: float) -> int:
        calls.append((list(argv), timeout))
        if len(calls) == 1:
            (runner.work / "run").mkdir(parents=True)
            (runner.work / "run" / "train.log").write_text("CUDA error")  # a broken first run
            return 1
        assert not (runner.work / "run" / "train.log").exists()  # it starts afresh
        (runner.work / "run" / "best").mkdir(parents=True)
        (runner.work / "run" / "best" / "config.json").write_text("{}")
        return 0

    monkeypatch.setattr(runner, "command", fake_command)
    values = steps.train_step(runner, tmp_path / "device")
    assert len(calls) == 2 and values["retried_in_fp32"] and "status" not in values
    first, second = calls[0][0], calls[1][0]
    assert "train.bf16=false" not in first and "train.bf16=false" in second
    retry_minutes = float(
        next(a for a in second if a.startswith("train.max_minutes=")).split("=")[1]
    )
    assert 1.0 <= retry_minutes < plan.train_minutes and calls[1][1] <= retry_minutes * 60 + 60


def test_a_training_killed_for_time_is_not_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = plans.gpu_plan(train_minutes=4.5, deadline_s=525.0)
    runner = Runner(tmp_path / "out", tmp_path / "work", plan, "gpu")
    (runner.results / "train.log").write_text("")
    calls: list[list[str]] = []
    monkeypatch.setattr(runner, "command", lambda step, argv, timeout: calls.append(argv))
    values = steps.train_step(runner, tmp_path / "device")
    assert len(calls) == 1 and not values["retried_in_fp32"] and values["status"] == "failed"


def test_the_carried_folder_is_git_ignored() -> None:
    assert is_git_ignored(REPO / "device")
    assert not is_git_ignored(REPO / "scripts")


@pytest.mark.slow
@pytest.mark.data
def test_the_cpu_rehearsal_writes_what_the_device_tool_returns(
    tmp_path: Path, data_dir: Path
) -> None:
    if not (REPO / "data" / "software" / "train.en").is_file():
        pytest.skip("no software corpus in data/software (mt-corpus builds it)")
    out = tmp_path / "out"
    out.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("MT_")}
    env.update(OUT=str(out), MT_DATA_DIR=str(data_dir), OMP_NUM_THREADS="1", PYTHON=sys.executable)
    completed = subprocess.run(
        ["bash", str(REPO / "scripts" / "gpu-run.sh"), "--rehearse", "--work", str(tmp_path / "w")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = completed.stdout[-6000:] + completed.stderr[-6000:]
    assert completed.returncode == 0, output

    assert limits.out_problems(out) == []
    files = sorted(p for p in out.rglob("*") if p.is_file())
    assert 1 < len(files) <= 8
    assert all(p.stat().st_size <= 16 * MIB for p in files)
    assert sum(p.stat().st_size for p in files) <= 64 * MIB
    model = out / "model"
    assert (model / "config.json").is_file() and list(model.glob("weights-*.safetensors"))
    assert limits.model_problems(model) == []

    with tarfile.open(out / "results.tar.gz") as archive:
        names = set(archive.getnames())
        summary_file = archive.extractfile("summary.json")
        assert summary_file is not None
        summary = json.loads(summary_file.read())
    expected_steps = [
        "prepare",
        "setup",
        "train",
        "export",
        "eval",
        "cuda_tests",
        "decode",
        "serve",
    ]
    assert list(summary["steps"]) == expected_steps
    assert {name: step["status"] for name, step in summary["steps"].items()} == dict.fromkeys(
        expected_steps, "ok"
    )
    assert summary["out_problems"] == []
    for test in ("tst2012", "tst2013", "software", "everyday"):
        assert summary["steps"]["eval"][test]["bleu_tokenized"] is not None
    train = summary["steps"]["train"]
    assert train["evaluations"] >= 1
    assert train["from_cache"] == 4  # train and dev, of TED and of the software corpus
    metrics = archive_json_lines(out / "results.tar.gz", "metrics.jsonl")
    assert all("dev_bleu_software" in row for row in metrics)  # the corpus was mixed in
    assert "skipped" in summary["steps"]["cuda_tests"]["result_line"]  # no CUDA here
    decode = summary["steps"]["decode"]
    for variant in ("eager", "cuda_graphs"):  # greedy and beam 5 each
        assert len(decode[variant]["sentences_per_s"]) == 2
    assert len(decode["graphs_over_eager"]) == 2
    assert set(summary["steps"]["serve"]["graphs_over_eager"]) == {"1", "2"}
    assert {"train.log", "metrics.jsonl", "eval_software.json", "serve.json"} <= names
    assert {"decode_eager.json", "decode_cuda_graphs.json", "pytest_cuda.log"} <= names


def archive_json_lines(archive: Path, name: str) -> list[dict]:
    with tarfile.open(archive) as packed:
        member = packed.extractfile(name)
        assert member is not None
        return [json.loads(line) for line in member.read().decode().splitlines() if line]
