"""model.runtime.devices: the one parser of device names, used by the Translator, the trainer and
the service's settings."""

from __future__ import annotations

import pytest
import torch

from model.runtime.devices import parse_device, resolve_device


@pytest.mark.parametrize(
    ("name", "parsed"),
    [("auto", "auto"), (" CPU ", "cpu"), ("cuda", "cuda"), ("cuda:1", "cuda:1")],
)
def test_known_names_are_normalised(name: str, parsed: str) -> None:
    assert parse_device(name) == parsed


@pytest.mark.parametrize("name", ["tpu", "cpu:0", "cuda:x", "", "mps"])
def test_unknown_names_are_refused_with_the_choices(name: str) -> None:
    with pytest.raises(ValueError, match=r"unknown device .*auto, cpu, cuda or cuda:N"):
        parse_device(name)


def test_resolve_auto_and_cpu() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu", local_rank=3) == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without a GPU")
def test_cuda_without_a_gpu_is_an_error() -> None:
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda:0")
