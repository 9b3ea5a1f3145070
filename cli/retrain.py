"""``mt-retrain``: train a candidate on new parallel data and promote it only if it is no worse.

    mt-retrain --models-root /models --init-only --base-model models/en-vi
    mt-retrain --models-root /models --data new/ --dev-data iwslt15/ \\
        --mix-original iwslt15/ --mix-ratio 1 --reload-url http://localhost:5000
    mt-retrain --models-root /models --data iwslt15/ --from-scratch --config configs/cpu.toml

The candidate trains in the current model's direction (its metadata's ``source_language`` and
``target_language``): the recipe's ``[data] source_lang``/``target_lang`` are set from it, so a
Vietnamese→English models root reads ``train.vi`` as the source of ``--data`` and of
``--mix-original``.

The run itself is :func:`training.retrain.run`; this module turns the options into a
:class:`~training.retrain.RetrainRequest`, makes SIGTERM/SIGHUP unwind the run, writes the JSON
report, prints the summary and maps the outcome to the exit status.

Exit status: 0 promoted (also: ``--init-only`` done, ``--dry-run`` candidate would be promoted),
1 rejected (``--dry-run``: would be rejected), 2 usage or data error, 3 promoted but a reload
request failed (the promotion stands), 4 unexpected failure (e.g. training crashed).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from cli.common import ExitCode, add_corpus_option, add_set_option, configure_logging
from training.reload_client import DEFAULT_ATTEMPTS, DEFAULT_TIMEOUT_S
from training.retrain import Interrupted, RetrainRequest, run, save_report
from training.retrain_report import RetrainReport, format_summary


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mt-retrain",
        description="Fine-tune (or retrain) on new parallel data; promote the candidate only "
        "if its dev BLEU is no worse than the current model's. See docs/retraining.md.",
    )
    parser.add_argument("--models-root", type=Path, required=True, help="versions/, current")
    parser.add_argument("--base-model", type=Path, help="seeds ROOT/current when it is missing")
    parser.add_argument("--init-only", action="store_true", help="only seed current, then exit")
    parser.add_argument(
        "--data",
        type=Path,
        help="new pairs in the current model's languages: train.en/train.vi (or .gz; the "
        "source is train.vi for a Vietnamese-English model)",
    )
    parser.add_argument("--dev-data", type=Path, help="dev set dir (tst2012.*; default: --data)")
    parser.add_argument("--mix-original", type=Path, help="original corpus dir (train.*)")
    parser.add_argument(
        "--mix-ratio", type=float, default=1.0, help="original pairs per new pair (default 1)"
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="TOML recipe (default configs/finetune.toml; tiny.toml with --from-scratch)",
    )
    add_set_option(parser)
    add_corpus_option(parser)
    parser.add_argument("--from-scratch", action="store_true", help="new tokenizers and weights")
    parser.add_argument(
        "--max-bleu-drop",
        type=float,
        default=0.0,
        help="promote if candidate >= current - this (default 0: no worse)",
    )
    parser.add_argument("--beam", type=int, default=1, help="dev decoding beam (1 = greedy)")
    parser.add_argument("--dev-limit", type=int, default=0, help="first N dev pairs (0 = all)")
    parser.add_argument(
        "--device", default=os.environ.get("MT_DEVICE", "auto"), help="auto, cpu, cuda, cuda:N"
    )
    parser.add_argument("--max-batch-tokens", type=int, default=4096, help="for dev decoding")
    parser.add_argument("--version", help="name of the new version (default: UTC time + -ft)")
    parser.add_argument("--dry-run", action="store_true", help="train and score, never promote")
    parser.add_argument("--discard-rejected", action="store_true", help="delete, don't keep")
    _add_reload_options(parser)
    parser.add_argument("--work-dir", type=Path, help="runs in progress (default ROOT/.work)")
    parser.add_argument("--keep-work", action="store_true", help="keep the training run dir")
    parser.add_argument("--report", type=Path, help="JSON report (default ROOT/reports/V.json)")
    return parser


def _add_reload_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--reload-url",
        action="append",
        default=[],
        metavar="URL",
        help="service to POST /admin/reload after promotion (repeatable)",
    )
    parser.add_argument(
        "--admin-token",
        default=os.environ.get("MT_ADMIN_TOKEN") or None,
        help="bearer token for the reload (default: $MT_ADMIN_TOKEN)",
    )
    parser.add_argument(
        "--reload-model-dir", help="model_dir to send (default: ROOT/current, absolute)"
    )
    parser.add_argument(
        "--reload-timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per try"
    )
    parser.add_argument(
        "--reload-attempts",
        type=int,
        default=DEFAULT_ATTEMPTS,
        help=f"tries per service (default {DEFAULT_ATTEMPTS}; only failures a retry can fix, "
        "no answer, 5xx or 429, are retried)",
    )


def request_from_args(args: argparse.Namespace) -> RetrainRequest:
    """The parsed options as a request (the only place that reads the Namespace). Every
    field is the option of the same name; ``--reload-url`` (repeatable) fills ``reload_urls``."""
    options = {**vars(args), "reload_urls": args.reload_url}
    return RetrainRequest(**{f.name: options[f.name] for f in dataclasses.fields(RetrainRequest)})


def exit_code(report: RetrainReport) -> ExitCode:
    """The exit status for how the run ended (the module docstring lists them)."""
    if report.status == "promoted":
        return ExitCode.MODEL_UNAVAILABLE if report.failed_reloads else ExitCode.OK
    if report.status == "dry_run":
        return ExitCode.OK if report.would_promote else ExitCode.REJECTED
    if report.status == "initialised":
        return ExitCode.OK
    if report.status == "rejected":
        return ExitCode.REJECTED
    if report.status == "error":
        return ExitCode.USAGE
    return ExitCode.FAILED  # failed, interrupted


def _raise_interrupted(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def _signals_unwind() -> Iterator[None]:
    """A kill (docker stop, systemd) unwinds the run like an error: temporary copies and the
    work directory are removed by its ``finally`` blocks, and the report says what happened.
    Only the main thread receives signals; elsewhere nothing changes."""
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {
            signum: signal.signal(signum, _raise_interrupted)
            for signum in (signal.SIGTERM, signal.SIGHUP)
        }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main(argv: list[str] | None = None) -> int:
    request = request_from_args(build_parser().parse_args(argv))
    configure_logging()
    with _signals_unwind():
        report = run(request)
    code = exit_code(report)
    report.finish(int(code))
    save_report(request, report)
    # one account of the run, errors included (an error is said once, on stderr)
    print(format_summary(report), file=sys.stderr if code else sys.stdout)
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
