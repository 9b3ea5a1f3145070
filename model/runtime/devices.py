"""Device names: the one parser of ``auto``, ``cpu``, ``cuda`` and ``cuda:N``.

The service validates ``MT_DEVICE`` with :func:`parse_device` before torch is imported; the
Translator and the trainer turn a name into a ``torch.device`` with :func:`resolve_device`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


def parse_device(name: str) -> str:
    """``name`` stripped and lower-cased when it is ``auto``, ``cpu``, ``cuda`` or ``cuda:N``;
    ``ValueError`` otherwise. Imports nothing heavy (settings are checked before torch)."""
    value = name.strip().lower()
    kind, colon, index = value.partition(":")
    if kind not in {"auto", "cpu", "cuda"} or (colon and (kind != "cuda" or not index.isdigit())):
        raise ValueError(f"unknown device {value!r} ({DEVICE_CHOICES})")
    return value


def resolve_device(name: str, local_rank: int | None = None) -> torch.device:
    """The ``torch.device`` for ``name``: ``auto`` is CUDA when available, else the CPU.

    ``local_rank`` (a torchrun process's GPU) completes a bare ``cuda`` to ``cuda:local_rank``;
    without it ``cuda`` stays the current GPU. CUDA asked for without a GPU is a ``ValueError``.
    """
    import torch

    value = parse_device(name)
    if value == "auto":
        value = "cuda" if torch.cuda.is_available() else "cpu"
    if value == "cuda" and local_rank is not None:
        value = f"cuda:{local_rank}"
    if value.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    return torch.device(value)
