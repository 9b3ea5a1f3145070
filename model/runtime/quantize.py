"""int8 inference on the CPU: the model's ``nn.Linear`` layers with int8 weights and a fixed
activation range.

Each weight matrix is kept as int8 with a scale; activations are quantized on the fly and the
result comes back in float32, so nothing else in the model changes. On the bundled model it
doubles CPU decoding speed for a BLEU change within noise (docs/benchmarks.md).

**A fixed activation range, so that a row's result never depends on the other rows.** fbgemm's
dynamic int8 scales a call's whole input by its minimum and maximum: the same sentence was
quantized one way alone and another way next to a sentence with a larger activation, and
beam search turned the difference into other words. Every ``nn.Linear`` of this model reads
activations bounded by ``[-1, 1]`` by construction: recurrent outputs (tanh-bounded), the
attentional vector (a tanh), and the attention context (a convex combination of recurrent
outputs). So :class:`FixedRangeLinear` quantizes its input with one scale for every call,
``[-1, 1]`` onto 7-bit codes ``1..127`` (the ``reduce_range`` codes fbgemm's dynamic path uses,
safe from the 16-bit saturation of AVX2 int8 products): its integer products are exact, and
each output row is a function of its input row alone, bit for bit, in any batch. The
recurrent layers stay float32 here: a dynamically quantized LSTM scales each step by the
whole batch, so CPU decoding runs the LSTM layers it can from per-token tables with a
:class:`FixedRangeLinear` for their recurrent half (:mod:`model.runtime.lstm_table`: the bundled
model's encoder and decoder), and the others in float32.

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

So the one implementation used today is fbgemm: ``quantize_dynamic`` packs the weights (its
deprecation warnings are caught here and logged once, not repeated per model load), and the
Linear layers then run fbgemm's int8 product with a given input scale
(``quantized::linear_with_input_q_dq_qweight_dq_output_fp32``). It sits behind
:func:`quantize_int8`, which never raises: when torch no longer has it, or it fails on this
platform, the model stays float32 and the reason is returned, logged and reported by
``GET /model``. Adding torchao's path later (for CPUs where ``torch._int_mm`` is fast) is one
more entry in :data:`_IMPLEMENTATIONS`.
"""

from __future__ import annotations

import copy
import functools
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar, cast

import torch
from torch import Tensor, nn

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


# The activation range of every Linear, [-1, 1], onto the 7-bit codes 1..127: code = x / scale
# + zero point. Codes stay within 0..127 up to |x| = 1 + 1/126, so a context vector a rounding
# above 1 is still safe.
ACTIVATION_SCALE = 1.0 / 63.0
ACTIVATION_ZERO_POINT = 64


class FixedRangeLinear(nn.Module):
    """An int8 ``nn.Linear`` (fbgemm packed weights, float bias) whose input is quantized with
    one fixed scale: ``... x in_features`` (values in ``[-1, 1]``) -> ``... x out_features``
    float32. Each output row depends on its own input row only, bit for bit."""

    def __init__(self, packed: Any, in_features: int, out_features: int) -> None:
        super().__init__()
        self.packed = packed  # torch.classes.quantized.LinearPackedParamsBase
        self.in_features, self.out_features = in_features, out_features

    @classmethod
    def of(cls, dynamic: nn.Module) -> FixedRangeLinear:
        """The same weights as a dynamically quantized ``Linear`` (torch.ao), with the fixed
        activation range."""
        layer = cast(Any, dynamic)  # torch.ao's dynamic Linear keeps its weights packed
        return cls(layer._packed_params._packed_params, layer.in_features, layer.out_features)

    def weight_bias(self) -> tuple[Tensor, Tensor | None]:
        """The int8 weight (a per-tensor quantized ``out x in`` tensor) and the float bias."""
        weight, bias = self.packed.unpack()
        return weight, bias

    def forward(self, x: Tensor) -> Tensor:
        return fixed_range_linear(x, self.packed)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


def fixed_range_linear(x: Tensor, packed: Any) -> Tensor:
    """``x @ W.T + b`` in int8 for fbgemm ``packed`` weights, ``x`` quantized with the fixed
    activation range (float32 out)."""
    return _int8_product()(x, ACTIVATION_SCALE, ACTIVATION_ZERO_POINT, packed)


@functools.cache
def _int8_product() -> Callable[..., Tensor]:
    """fbgemm's int8 product with a given input scale, looked up once. Called through
    ``torch.ops``, an operator that takes packed weights first checks every argument for a
    fake script object (something only tracing makes, and decoding never traces): a few
    microseconds a call, a sixth of the product itself for one row, and the decoder makes
    several such products a step. The overload's own function skips that check; a torch
    without it gets the public overload."""
    overload = torch.ops.quantized.linear_with_input_q_dq_qweight_dq_output_fp32.default
    product: Callable[..., Tensor] = getattr(overload, "_op", overload)
    return product


def _with_fixed_range_linears(module: nn.Module) -> None:
    """Swap each dynamically quantized ``Linear`` inside ``module`` for a
    :class:`FixedRangeLinear` over the same packed weights (in place)."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    for name, child in module.named_children():
        if isinstance(child, DynamicLinear):
            setattr(module, name, FixedRangeLinear.of(child))
        else:
            _with_fixed_range_linears(child)


def _fbgemm(model: nn.Module) -> nn.Module:
    """fbgemm int8 of every ``nn.Linear`` (a fixed activation range), in a copy; fails here,
    not at the first translation, when the int8 product is missing."""
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        # Deprecation notices of torch.ao.quantization and of the qint8 dtype: known, and
        # said once in the module docstring and the load log instead of at every load.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.ao")
        warnings.filterwarnings("ignore", message=r".*quantized tensor creation functions.*")
        warnings.filterwarnings("ignore", message=r".*torch\.ao\.quantization is deprecated.*")
        quantized = quantize_dynamic(
            copy.deepcopy(model), {nn.Linear}, dtype=torch.qint8, inplace=False
        )
    _with_fixed_range_linears(quantized)
    for layer in quantized.modules():
        if isinstance(layer, FixedRangeLinear):
            layer(torch.zeros(1, layer.in_features))
    return quantized


# Tried in order; the first one that works is used.
_IMPLEMENTATIONS: tuple[tuple[str, Callable[[nn.Module], nn.Module]], ...] = (
    (
        "fbgemm int8 (torch.ao.quantization): Linear layers with a fixed activation range",
        _fbgemm,
    ),
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
