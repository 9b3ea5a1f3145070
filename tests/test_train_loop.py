"""The training loop's stopping rule (training/loop.py): one function says why a run ends."""

from __future__ import annotations

import dataclasses

from tests.test_train import toy_config
from training.loop import stop_reason
from training.state import Progress


def test_stop_reason_names_the_limit_reached_and_patience_comes_first() -> None:
    steps = toy_config(max_steps=100, max_minutes=0).train
    assert stop_reason(steps, Progress(step=50), 100) is None
    assert stop_reason(steps, Progress(step=100), 100) == "max_steps"
    assert stop_reason(steps, Progress(step=100), 100, patience_over=True) == "patience"

    epochs = dataclasses.replace(steps, max_steps=0, max_epochs=2)
    assert stop_reason(epochs, Progress(step=100), 100) == "max_epochs"
    assert stop_reason(epochs, Progress(step=60, epoch=2), 100) == "max_epochs"
    assert stop_reason(epochs, Progress(step=60, epoch=1), 100) is None

    timed = dataclasses.replace(steps, max_minutes=1.0)
    assert stop_reason(timed, Progress(step=5), 100, elapsed=59.0) is None
    assert stop_reason(timed, Progress(step=5), 100, elapsed=60.0) == "max_minutes"
