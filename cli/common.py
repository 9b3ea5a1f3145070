"""What every entry point shares: exit statuses, the ``--set`` option and the log format."""

from __future__ import annotations

import argparse
import logging
from enum import IntEnum

from model.log_format import LOG_FORMAT


class ExitCode(IntEnum):
    """Exit statuses; each tool uses the subset its ``--help`` lists."""

    OK = 0
    # mt-retrain: the candidate scored below the gate; nothing was promoted.
    REJECTED = 1
    # Any tool: bad arguments, settings, recipe or input files; the message names the problem.
    USAGE = 2
    # mt-serve: the model failed to load at start-up. mt-retrain: promoted, but a replica did
    # not reload.
    MODEL_UNAVAILABLE = 3
    # mt-serve: the address is taken. mt-retrain: the run failed before a decision.
    FAILED = 4
    # Ctrl-C: the shell's status for a process ended by SIGINT (128 + 2).
    INTERRUPTED = 130


def configure_logging(level: int = logging.INFO) -> None:
    """One log format for every tool, on standard error."""
    logging.basicConfig(level=level, format=LOG_FORMAT)


def add_set_option(parser: argparse.ArgumentParser, example: str = "train.max_steps=200") -> None:
    """``--set SECTION.KEY=VALUE`` (repeatable), collected in ``args.overrides``."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help=f"override one recipe value (repeatable), e.g. --set {example}",
    )


def add_corpus_option(parser: argparse.ArgumentParser) -> None:
    """``--corpus NAME=DIR[:WEIGHT]`` (repeatable), collected in ``args.corpora``."""
    parser.add_argument(
        "--corpus",
        dest="corpora",
        action="append",
        default=[],
        metavar="NAME=DIR[:WEIGHT]",
        help="mix a further corpus into training (repeatable; its dev.* scored on its own), "
        "e.g. --corpus software=data/software:0.3; the same as a [[corpora]] table",
    )
