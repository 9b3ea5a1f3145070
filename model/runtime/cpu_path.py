"""Which CPU path a model runs on when the settings leave it to the machine (``quantize=auto``):
int8 with or without the lexical shortlist and its LSTM token table, bfloat16, or float32.

The fastest path depends on the CPU, and a rule on its features decides (:func:`choose`), so
that every process on one kind of machine picks the same path and gives the same translations
(a measurement at load would not: it varies with the load of the moment). The rule, from
side-by-side runs of the bundled model (docs/benchmarks.md, a section per CPU class):

* **AVX2, AVX-512 or AMX**: int8 (fbgemm) with the shortlist and the token table: 1.16x over
  int8 alone on an AVX2 EPYC, 1.09x on an AVX-512 EPYC (Zen 4), whose native bfloat16
  (``avx512_bf16``) was slower than int8 there, and 1.11x on an Intel Xeon with AMX (the
  width-256 model had measured 0.93x there, before search ranked each sentence's own
  vocabulary). bfloat16 is never chosen, although AMX tiles run it: its matrix products round
  by the batch's shape, so a sentence's translation would depend on the sentences beside it,
  which int8 rules out (:mod:`model.nn.fixed_point`). ``bf16=True`` still asks for it.
* **Neither** (no AVX2, which fbgemm's int8 kernels need): float32 with the shortlist.

An explicit setting (``quantize=int8`` / ``off``, ``bf16``, ``shortlist=on`` / ``off``) always
wins over the rule; :class:`CpuPath` records which decided and why (``GET /model``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

# The features the rule reads, as /proc/cpuinfo names them.
FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")
CPUINFO = Path("/proc/cpuinfo")

Precision = Literal["int8", "bfloat16", "float32"]


@dataclass(frozen=True)
class CpuPath:
    """How the model runs on this CPU: ``precision``, whether the shortlist (with its token
    table) is wanted, who decided (``auto``: the rule; ``settings``) and why."""

    precision: Precision
    shortlist: bool
    chosen_by: Literal["auto", "settings"]
    reason: str
    features: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "shortlist": self.shortlist,
            "chosen_by": self.chosen_by,
            "reason": self.reason,
            "cpu_features": list(self.features),
        }


def cpu_features(cpuinfo: Path = CPUINFO) -> frozenset[str]:
    """The :data:`FEATURES` this CPU has: from ``/proc/cpuinfo`` on Linux, else what torch's
    own dispatch found (``AVX512`` or ``AVX2``)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split()) & frozenset(FEATURES)
    capability = torch.backends.cpu.get_cpu_capability()
    if capability.startswith("AVX512"):
        return frozenset({"avx2", "avx512f"})
    return frozenset({"avx2"}) if capability == "AVX2" else frozenset()


def choose(features: frozenset[str]) -> CpuPath:
    """The rule of the module docstring, for a CPU with ``features``."""
    listed = tuple(sorted(features))
    if "avx2" in features:
        kind = "AMX" if "amx_bf16" in features else "AVX-512" if "avx512f" in features else "AVX2"
        reason = (
            f"{kind}: int8 with the shortlist and the token table "
            "(measured fastest on AVX2 and AVX-512 EPYCs and on an AMX Xeon)"
        )
        return CpuPath("int8", True, "auto", reason, listed)
    reason = "no AVX2 (int8's kernels need it): float32 with the shortlist"
    return CpuPath("float32", True, "auto", reason, listed)


def resolve(quantize: str, bf16: bool | None, shortlist: str, features: frozenset[str]) -> CpuPath:
    """The CPU path for these settings: explicit ones as they say (``quantize=int8`` or
    ``off``, ``bf16=True``, ``shortlist=on`` or ``off``), the rest from the rule (which never
    picks bfloat16)."""
    rule = choose(features)
    if quantize == "int8" and bf16:
        raise ValueError("quantize=int8 and bf16 exclude each other on the CPU")
    settings = []
    precision: Precision = rule.precision
    if quantize != "auto" or bf16 is not None:
        if quantize == "int8" or bf16 or quantize == "off":
            precision = "int8" if quantize == "int8" else "bfloat16" if bf16 else "float32"
        settings.append(f"quantize={quantize}, bf16={bf16}")
    wanted = rule.shortlist
    if shortlist != "auto":
        wanted = shortlist == "on"
        settings.append(f"shortlist={shortlist}")
    if settings:
        return CpuPath(precision, wanted, "settings", "; ".join(settings), rule.features)
    return rule
