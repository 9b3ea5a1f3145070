"""The learning-rate schedule: linear warmup, then cosine decay to a floor.

A pure function of the step, so resuming needs no scheduler state beyond the step counter::

    lr(step) = peak * step / warmup                                    step <= warmup
    lr(step) = peak * (floor + (1 - floor) * (1 + cos(pi * p)) / 2)    p = progress after warmup

Warmup keeps Adam's early, poorly estimated second moments from throwing the fresh LSTM weights
around; cosine decay lets a fixed step budget end at a small rate, where the model settles.
With a time budget (``train.max_minutes``) the decay follows whichever budget runs out first.
"""

from __future__ import annotations

import math


def learning_rate(
    step: int,
    peak: float,
    warmup_steps: int,
    total_steps: int,
    min_ratio: float,
    time_fraction: float = 0.0,
) -> float:
    """The rate for optimizer step ``step`` (1-based); flat at the floor after ``total_steps``.

    ``time_fraction`` (elapsed / time budget, when the run has one) can move the decay ahead of
    the step count: the rate then reaches its floor when the time runs out even if the machine
    turned out slower than planned. Without a time budget the schedule is a pure function of
    the step, which exact resume relies on.
    """
    if warmup_steps > 0 and step <= warmup_steps:
        return peak * step / warmup_steps
    decay_steps = max(total_steps - warmup_steps, 1)
    progress = max((step - warmup_steps) / decay_steps, time_fraction)
    progress = min(max(progress, 0.0), 1.0)
    return peak * (min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress)))
