"""bfloat16 where the recipe asks for it and the hardware computes it natively."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from typing import Any

import torch

from training.config import RunConfig

logger = logging.getLogger("training")


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX). Without it,
    oneDNN emulates bf16 and a training step gets many times slower, not faster."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(config: RunConfig, device: torch.device) -> RunConfig:
    """Turn ``train.bf16_cpu`` off (with a warning) on a CPU without native bf16."""
    if not (config.train.bf16_cpu and device.type == "cpu") or cpu_has_native_bf16():
        return config
    logger.warning("train.bf16_cpu ignored: this CPU has no native bfloat16; training in fp32")
    return config.replace(train=dataclasses.replace(config.train, bf16_cpu=False))


def autocast(
    device: torch.device, cuda_bf16: bool, cpu_bf16: bool = False
) -> contextlib.AbstractContextManager[Any]:
    """bfloat16 autocast where the recipe asks for it on this device type (the weights and
    the optimizer state stay fp32)."""
    if (device.type == "cuda" and cuda_bf16) or (device.type == "cpu" and cpu_bf16):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
