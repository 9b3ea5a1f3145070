"""mt-retrain: seeding the models root, the promotion rule, the atomic ``current`` pointer,
the reload request, exit codes and the JSON report. Each run trains a tiny model for 2 steps."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli.retrain import main
from model.runtime.shortlist import SHORTLIST_FILE, Shortlist
from model.store.checkpoint import load_model
from tests.fake_http import JsonPostServer, json_post_server
from training.config import DataConfig
from training.model_store import ModelsRoot
from training.promotion import passes
from training.retrain_data import prepare_data
from training.toy import write_toy_dataset

TOKEN = "s3cret-token"
TRAIN_PAIRS, DEV_PAIRS = 60, 12
# Two optimisation steps of the tiny model on CPU: a real candidate, in about a second.
FAST = [
    "--device", "cpu",
    "--set", "train.max_steps=2",
    "--set", "train.eval_every=2",
    "--set", "train.batch_tokens=400",
    "--set", "train.num_threads=1",
    "--reload-attempts", "1",
    "--reload-timeout", "10",
]  # fmt: skip


@contextlib.contextmanager
def reload_server(status: int = 200, served_version: str | None = None) -> Iterator[JsonPostServer]:
    """A local stand-in for ``POST /admin/reload`` that records what it was sent. Like the
    service, it loads the directory and reports its metadata; ``served_version`` makes it
    claim another version, and a ``status`` other than 200 rejects the reload."""

    def answer(request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if status != 200:
            return status, {"error": "Reload rejected"}
        metadata = load_model(request["body"]["model_dir"]).metadata
        if served_version is not None:
            metadata["version"] = served_version
        return 200, {"status": "reloaded", "metadata": metadata}

    with json_post_server(answer) as server:
        yield server


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``train.{en,vi}`` (60 pairs) and ``tst2012.{en,vi}`` (12 pairs) of the toy grammar."""
    directory = tmp_path_factory.mktemp("toy")
    write_toy_dataset(directory, train_pairs=TRAIN_PAIRS, dev_pairs=DEV_PAIRS, seed=3)
    return directory


def seeded_root(tmp_path: Path, base: Path) -> Path:
    root = tmp_path / "models"
    assert main(["--models-root", str(root), "--init-only", "--base-model", str(base)]) == 0
    return root


def retrain(root: Path, data: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    report_path = root.parent / "report.json"
    code = main(
        [
            "--models-root",
            str(root),
            "--data",
            str(data),
            *FAST,
            "--report",
            str(report_path),
            *extra,
        ]
    )
    return code, json.loads(report_path.read_text(encoding="utf-8"))


def leftovers(directory: Path) -> list[str]:
    """Temporary entries (``.name.tmp-*``, ``.current.tmp-*``) a crash-free run must not leave."""
    return [p.name for p in directory.iterdir() if ".tmp-" in p.name]


def test_init_only_seeds_current_once(tiny_model_dir: Path, tmp_path: Path) -> None:
    root = seeded_root(tmp_path, tiny_model_dir)
    pointer = root / "current"
    assert pointer.is_symlink() and os.readlink(pointer) == "versions/tiny-test"  # relative
    loaded = load_model(pointer)
    assert loaded.metadata["version"] == "tiny-test"
    assert loaded.metadata["seeded_from"] == str(tiny_model_dir)

    # idempotent: the container entrypoint runs it on every start
    assert main(["--models-root", str(root), "--init-only", "--base-model", "/nowhere"]) == 0
    assert os.readlink(pointer) == "versions/tiny-test"
    assert [p.name for p in (root / "versions").iterdir()] == ["tiny-test"]
    assert leftovers(root) == [] and leftovers(root / "versions") == []

    # a seeding interrupted between the copy and the pointer reuses the identical copy
    pointer.unlink()
    assert (
        main(["--models-root", str(root), "--init-only", "--base-model", str(tiny_model_dir)]) == 0
    )
    assert os.readlink(pointer) == "versions/tiny-test"
    assert [p.name for p in (root / "versions").iterdir()] == ["tiny-test"]


@pytest.fixture(scope="module")
def promoted(
    tiny_model_dir: Path, toy_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, int, dict[str, Any], JsonPostServer, str]]:
    """One promoting run (seeding from the base model in the same call), with a reload."""
    root = tmp_path_factory.mktemp("promoted") / "models"
    with reload_server(200) as server:
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            code, report = retrain(
                root,
                toy_data,
                "--base-model",
                str(tiny_model_dir),
                "--version",
                "v2",
                "--max-bleu-drop",
                "1000",
                "--reload-url",
                server.url,
                "--admin-token",
                TOKEN,
            )
        yield root, code, report, server, buffer.getvalue()


def test_promotion_points_current_at_the_new_version(
    promoted: tuple[Path, int, dict[str, Any], JsonPostServer, str],
) -> None:
    root, code, report, _, _ = promoted
    assert code == 0
    assert os.readlink(root / "current") == "versions/v2"
    served = load_model(root / "current")  # sha256s still valid after the metadata edit
    assert served.metadata["version"] == "v2"
    assert served.metadata["parent_version"] == "tiny-test"
    assert served.metadata["retrain"]["dev_bleu"] == report["candidate"]["bleu"]
    # it serves with a shortlist of its own training pairs
    sizes = (served.config.source_vocab_size, served.config.target_vocab_size)
    shortlist = Shortlist.load(root / "current" / SHORTLIST_FILE, *sizes)
    assert int(shortlist.info["training_pairs"]) > 0
    # the previous version stays complete, for rollback
    assert load_model(root / "versions" / "tiny-test").metadata["version"] == "tiny-test"
    assert sorted(p.name for p in (root / "versions").iterdir()) == ["tiny-test", "v2"]
    assert leftovers(root) == [] and leftovers(root / "versions") == []
    assert not (root / ".work" / "v2").exists()  # the training run is cleaned up
    assert not (root / "rejected").exists()


def test_promotion_requests_a_reload_with_the_bearer_token(
    promoted: tuple[Path, int, dict[str, Any], JsonPostServer, str],
) -> None:
    root, _, report, server, _ = promoted
    assert server.requests == [
        {
            "path": "/admin/reload",
            "authorization": f"Bearer {TOKEN}",
            "body": {"model_dir": str((root / "current").absolute())},
        }
    ]
    assert report["reload"] == [
        {
            "url": f"{server.url}/admin/reload",
            "ok": True,
            "status": 200,
            "detail": "serving version v2",
        }
    ]


def test_report_and_summary_describe_the_promotion(
    promoted: tuple[Path, int, dict[str, Any], JsonPostServer, str],
) -> None:
    root, _, report, _, summary = promoted
    assert report["status"] == "promoted" and report["exit_code"] == 0
    assert report["version"] == "v2" and report["mode"] == "finetune"
    assert report["seeded"] == "tiny-test"
    assert report["current"]["version"] == "tiny-test"
    assert report["candidate"]["dir"] == str(root / "versions" / "v2")
    current_bleu, candidate_bleu = report["current"]["bleu"], report["candidate"]["bleu"]
    assert 0.0 <= current_bleu <= 100.0 and 0.0 <= candidate_bleu <= 100.0
    assert report["rule"] == {
        "max_bleu_drop": 1000.0,
        "bleu_change": round(candidate_bleu - current_bleu, 2),
        "passed": True,
    }
    assert report["data"]["new_pairs"] == TRAIN_PAIRS and report["data"]["original_pairs"] == 0
    assert report["evaluation"]["sentences"] == DEV_PAIRS and report["evaluation"]["beam"] == 1
    assert report["training"]["steps"] == 2
    assert report["warnings"] == []
    assert "PROMOTED v2" in summary
    assert f"current      {current_bleu:.2f}" in summary
    assert f"candidate    {candidate_bleu:.2f}" in summary
    assert "current -> versions/v2" in summary


def test_a_worse_candidate_is_rejected_and_current_is_untouched(
    tiny_model_dir: Path, toy_data: Path, tmp_path: Path
) -> None:
    root = seeded_root(tmp_path, tiny_model_dir)
    config_before = (root / "current" / "config.json").read_bytes()
    with reload_server(200) as server:
        # A negative allowance demands a 1000-BLEU improvement: unreachable.
        code, report = retrain(
            root,
            toy_data,
            "--version",
            "v3",
            "--max-bleu-drop",
            "-1000",
            "--reload-url",
            server.url,
            "--admin-token",
            TOKEN,
        )
    assert code == 1
    assert os.readlink(root / "current") == "versions/tiny-test"
    assert (root / "current" / "config.json").read_bytes() == config_before
    assert [p.name for p in (root / "versions").iterdir()] == ["tiny-test"]
    assert load_model(root / "rejected" / "v3").metadata["version"] == "v3"  # for inspection
    assert server.requests == []  # nothing to reload
    assert report["status"] == "rejected" and report["rule"]["passed"] is False
    assert report["candidate"]["dir"] == str(root / "rejected" / "v3")


@pytest.mark.parametrize(
    ("status", "served_version", "detail"),
    [
        (400, None, "HTTP 400"),  # the service rejected the model (or the token)
        (200, "elsewhere", "serves version elsewhere, not v4"),  # it sees another models root
    ],
)
def test_reload_failure_exits_3_and_the_promotion_stands(
    tiny_model_dir: Path,
    toy_data: Path,
    tmp_path: Path,
    status: int,
    served_version: str | None,
    detail: str,
) -> None:
    root = seeded_root(tmp_path, tiny_model_dir)
    with reload_server(status, served_version) as server:
        code, report = retrain(
            root,
            toy_data,
            "--version",
            "v4",
            "--max-bleu-drop",
            "1000",
            "--reload-url",
            server.url,
            "--admin-token",
            TOKEN,
        )
    assert code == 3
    assert len(server.requests) == 1  # 4xx and wrong versions are not retried
    assert os.readlink(root / "current") == "versions/v4"
    assert report["status"] == "promoted" and report["exit_code"] == 3
    assert report["reload"][0]["ok"] is False and report["reload"][0]["status"] == status
    assert detail in report["reload"][0]["detail"]
    assert "reload failed" in report["warnings"][0]


def test_dry_run_scores_but_never_promotes(
    tiny_model_dir: Path, toy_data: Path, tmp_path: Path
) -> None:
    root = seeded_root(tmp_path, tiny_model_dir)
    code, report = retrain(
        root, toy_data, "--version", "v5", "--max-bleu-drop", "1000", "--dry-run"
    )
    assert code == 0
    assert os.readlink(root / "current") == "versions/tiny-test"
    assert [p.name for p in (root / "versions").iterdir()] == ["tiny-test"]
    assert report["status"] == "dry_run" and report["would_promote"] is True
    assert load_model(report["candidate"]["dir"]).metadata  # kept for inspection


def write_pairs(directory: Path, prefix: str, pairs: list[tuple[str, str]]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for index, lang in enumerate(("en", "vi")):
        text = "".join(pair[index] + "\n" for pair in pairs)
        (directory / f"{prefix}.{lang}").write_text(text, encoding="utf-8")


def test_prepare_data_mixes_a_sample_of_the_original_corpus(tmp_path: Path) -> None:
    new = [(f"new {i}", f"mới {i}") for i in range(20)]
    original = [(f"old {i}", f"cũ {i}") for i in range(100)]
    write_pairs(tmp_path / "new", "train", new)
    write_pairs(tmp_path / "original", "train", original)
    write_pairs(tmp_path / "original", "tst2012", [("dev", "phát triển")])

    prepared = prepare_data(
        tmp_path / "new",
        [tmp_path / "new", tmp_path / "original"],  # the dev set is found in the second
        DataConfig(),
        tmp_path / "work",
        mix_dir=tmp_path / "original",
        mix_ratio=1.5,
        seed=7,
    )
    assert (prepared.new_pairs, prepared.original_pairs) == (20, 30)
    sources = (prepared.directory / "train.en").read_text(encoding="utf-8").splitlines()
    targets = (prepared.directory / "train.vi").read_text(encoding="utf-8").splitlines()
    assert list(zip(sources[:20], targets[:20], strict=True)) == new
    sampled = list(zip(sources[20:], targets[20:], strict=True))
    assert len(set(sampled)) == 30 and set(sampled) <= set(original)  # aligned, no repeats
    assert prepared.dev_source.resolve() == (tmp_path / "original" / "tst2012.en").resolve()

    again = prepare_data(
        tmp_path / "new",
        [tmp_path / "original"],
        DataConfig(),
        tmp_path / "work2",
        mix_dir=tmp_path / "original",
        mix_ratio=1.5,
        seed=7,
    )
    assert (again.directory / "train.en").read_text() == "\n".join(sources) + "\n"


@pytest.mark.parametrize(
    ("current", "candidate", "max_drop", "expected"),
    [
        (None, 0.0, 0.0, True),  # no current model: anything is better
        (20.0, 20.0, 0.0, True),  # default: no worse
        (20.0, 19.99, 0.0, False),
        (20.0, 19.5, 0.5, True),
        (20.0, 19.4, 0.5, False),
        (20.0, 20.5, -1.0, False),  # a negative allowance demands an improvement
        (20.0, 21.0, -1.0, True),
    ],
)
def test_promotion_rule(
    current: float | None, candidate: float, max_drop: float, expected: bool
) -> None:
    assert passes(current, candidate, max_drop) is expected


def test_usage_and_data_errors_exit_2_without_touching_current(
    tiny_model_dir: Path, toy_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MT_ADMIN_TOKEN", raising=False)
    empty_root = tmp_path / "empty"
    assert main(["--models-root", str(empty_root), "--data", str(toy_data)]) == 2  # no current
    assert not (empty_root / "current").exists()

    root = seeded_root(tmp_path, tiny_model_dir)
    misaligned = tmp_path / "misaligned"
    write_pairs(misaligned, "train", [("a", "b"), ("c", "d")])
    (misaligned / "train.vi").write_text("only one line\n", encoding="utf-8")
    no_dev = tmp_path / "no-dev"
    write_pairs(no_dev, "train", [("a", "b")])
    for arguments in (
        ["--data", str(toy_data), "--reload-url", "http://127.0.0.1:9"],  # no token
        ["--data", str(misaligned), "--dev-data", str(toy_data)],
        ["--data", str(no_dev)],
        ["--data", str(toy_data), "--version", "../escape"],
        ["--data", str(toy_data), "--set", "train.no_such_key=1"],
    ):
        assert main(["--models-root", str(root), *arguments]) == 2, arguments
    with ModelsRoot(root).locked(wait=False):  # another mt-retrain is running
        assert main(["--models-root", str(root), "--data", str(toy_data)]) == 2
    assert os.readlink(root / "current") == "versions/tiny-test"
    assert [p.name for p in (root / "versions").iterdir()] == ["tiny-test"]


def test_a_usage_error_is_said_once_on_stderr(
    tiny_model_dir: Path, toy_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = seeded_root(tmp_path, tiny_model_dir)
    capsys.readouterr()  # seeding's own summary
    arguments = ["--data", str(toy_data), "--reload-url", "http://127.0.0.1:9"]
    assert main(["--models-root", str(root), "--admin-token", "", *arguments]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("--reload-url needs --admin-token") == 1
    assert captured.out == ""


def test_a_training_crash_exits_4_and_leaves_current_alone(
    tiny_model_dir: Path, toy_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("CUDA out of memory (simulated)")

    monkeypatch.setattr("training.retrain.train", crash)
    root = seeded_root(tmp_path, tiny_model_dir)
    code, report = retrain(root, toy_data, "--version", "v6")
    assert code == 4
    assert report["status"] == "failed" and "simulated" in report["error"]
    assert os.readlink(root / "current") == "versions/tiny-test"
    assert [p.name for p in (root / "versions").iterdir()] == ["tiny-test"]
    assert not (root / ".work" / "v6").exists()


# ----------------------------------------------------------------------------- interrupted runs


def test_leftovers_of_killed_runs_are_removed_by_the_next_run(
    tiny_model_dir: Path, toy_data: Path, tmp_path: Path
) -> None:
    root = seeded_root(tmp_path, tiny_model_dir)
    staging = root / "versions" / ".20260101-ft.tmp-0123abcd"
    staging.mkdir()
    (staging / "weights.safetensors").write_bytes(b"x" * 1000)
    (root / ".current.tmp-89abcdef").symlink_to("versions/nowhere")
    killed = root / ".work" / "20260101-ft"
    killed.mkdir(parents=True)
    (killed / ".in-progress").write_text("12345\n")
    kept = root / ".work" / "kept-on-purpose"  # --keep-work: not marked
    kept.mkdir()
    code, report = retrain(root, toy_data, "--max-bleu-drop", "100")
    assert code == 0, report
    assert not staging.exists() and not killed.exists() and kept.is_dir()
    assert leftovers(root) == [] and leftovers(root / "versions") == []
    assert any("interrupted runs" in warning for warning in report["warnings"])


def test_sigterm_during_training_cleans_up_and_reports(
    tiny_model_dir: Path, toy_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = seeded_root(tmp_path, tiny_model_dir)

    def killed(*args: Any, **kwargs: Any) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler interrupts this
        raise AssertionError("SIGTERM was not delivered")

    monkeypatch.setattr("training.retrain._train_candidate", killed)
    code, report = retrain(root, toy_data)
    assert code == 4
    assert report["status"] == "interrupted" and "SIGTERM" in report["error"]
    assert list((root / ".work").iterdir()) == [], "work directory left behind"
    assert signal.getsignal(signal.SIGTERM) is not None


def test_the_report_exists_as_soon_as_current_is_swapped(
    tiny_model_dir: Path, toy_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = seeded_root(tmp_path, tiny_model_dir)
    seen: list[dict[str, Any]] = []

    def reload_after_a_kill_would_be_too_late(*args: Any, **kwargs: Any) -> Any:
        seen.append(json.loads((root.parent / "report.json").read_text(encoding="utf-8")))
        raise KeyboardInterrupt  # killed during the reload

    monkeypatch.setattr("training.retrain.request_reload", reload_after_a_kill_would_be_too_late)
    code, report = retrain(
        root,
        toy_data,
        "--max-bleu-drop",
        "100",
        "--reload-url",
        "http://127.0.0.1:9",
        "--admin-token",
        TOKEN,
    )
    assert seen and seen[0]["status"] == "promoted" and seen[0]["reload"] == "pending"
    assert code == 4 and report["status"] == "interrupted" and report["stage"] == "promoted"
    assert os.readlink(root / "current") == f"versions/{report['version']}"
