"""int8 inference on the CPU: dynamic quantization of the model's ``nn.Linear`` and ``nn.LSTM``.

Dynamic int8 keeps each weight matrix as int8 with a scale and quantizes the activations on
the fly, per call; the result comes back in float32, so nothing else in the model changes.
On the bundled model it doubles CPU decoding speed for a BLEU change within noise
(docs/benchmarks.md).

Which implementation, and why (torch 2.13, read and checked in November 2026):

* torch documents ``torch.ao.quantization.quantize_dynamic`` as deprecated ("please migrate to
  torchao's ``quantize_``"), and the ``qint8``/``quint8`` tensor dtypes behind it too
  (pytorch/pytorch#184982: plain ``int8`` tensors with scales kept by the model code). It still
  ships and still runs fbgemm's int8 kernels, which cover ``nn.Linear`` *and* ``nn.LSTM``.
* torchao's replacement, ``quantize_(model, Int8DynamicActivationInt8WeightConfig())``,
  quantizes ``nn.Linear`` only (torchao has no LSTM), and in eager mode on a CPU its int8
  product is ``torch._int_mm``. On the 2-core AVX2 CPU (no VNNI) this project is measured on,
  a 40x256 by 256x6000 product (one beam-search step's output layer) took 49 ms with
  ``torch._int_mm`` against 2.9 ms in float32 and 1.7 ms with fbgemm's dynamic int8:
  the int8 path with a future is 17x *slower* here until the CPU has VNNI/AMX or the
  decoder is compiled, so using it would make "int8" a slowdown.

So the one implementation used today is fbgemm through ``quantize_dynamic`` (its deprecation
warnings are caught here and logged once, not repeated per model load). It sits behind
:func:`quantize_int8`, which never raises: when torch no longer has it, or it fails on this
platform, the model stays float32 and the reason is returned, logged and reported by
``GET /model``. Adding torchao's path later (for CPUs where ``torch._int_mm`` is fast) is one
more entry in :data:`_IMPLEMENTATIONS`.
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar, cast

import torch
from torch import nn

logger = logging.getLogger(__name__)

QuantizeMode = Literal["auto", "int8", "off"]
QUANTIZE_MODES: tuple[QuantizeMode, ...] = ("auto", "int8", "off")

M = TypeVar("M", bound=nn.Module)


@dataclass(frozen=True)
class Quantized(Generic[M]):
    """The outcome of :func:`quantize_int8`: the model to run and what was done to it.

    ``implementation`` is None when the model stayed float32; ``reason`` then says why.
    """

    model: M
    implementation: str | None
    reason: str | None = None


def wants_int8(mode: str, device: torch.device) -> bool:
    """Whether ``mode`` means int8 on ``device``: ``auto`` is int8 on the CPU and off on CUDA
    (the int8 kernels are CPU kernels; CUDA has bf16); ``int8`` on CUDA is an error."""
    if mode not in QUANTIZE_MODES:
        raise ValueError(f"quantize must be one of {', '.join(QUANTIZE_MODES)}, got {mode!r}")
    if mode == "off":
        return False
    if device.type != "cpu":
        if mode == "int8":
            raise ValueError(f"int8 quantization runs on the CPU only, not on {device}")
        return False
    return True


def _fbgemm_dynamic(model: nn.Module) -> nn.Module:
    """fbgemm dynamic int8 of every ``nn.Linear`` and ``nn.LSTM`` (a quantized copy)."""
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        # Deprecation notices of torch.ao.quantization and of the qint8 dtype: known, and
        # said once in the module docstring and the load log instead of at every load.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.ao")
        warnings.filterwarnings("ignore", message=r".*quantized tensor creation functions.*")
        warnings.filterwarnings("ignore", message=r".*torch\.ao\.quantization is deprecated.*")
        return quantize_dynamic(
            copy.deepcopy(model), {nn.Linear, nn.LSTM}, dtype=torch.qint8, inplace=False
        )


# Tried in order; the first one that works is used.
_IMPLEMENTATIONS: tuple[tuple[str, Callable[[nn.Module], nn.Module]], ...] = (
    ("fbgemm dynamic int8 (torch.ao.quantization.quantize_dynamic): Linear, LSTM", _fbgemm_dynamic),
)


def quantize_int8(model: M) -> Quantized[M]:
    """A dynamically quantized copy of ``model`` (in eval mode, on the CPU), or ``model``
    itself with the reason when no implementation works here. ``model`` is not modified."""
    failures = []
    for name, implementation in _IMPLEMENTATIONS:
        try:
            quantized = implementation(model)
        except Exception as exc:  # any failure means: try the next one, else float32
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        logger.info("int8: %s", name)
        # quantize_dynamic swaps submodules of a copy: the copy keeps the model's class
        return Quantized(cast(M, quantized.eval()), name)
    reason = "; ".join(failures) or "no int8 implementation"
    logger.warning("int8 quantization unavailable, serving float32 (%s)", reason)
    return Quantized(model, None, reason)
