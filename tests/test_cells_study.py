"""The cell study's two measurements (issue: does the plain RNN fall off on long sentences?).

``scripts/gradient_flow.py``: the step-by-step encoder it differentiates must be the model's
own encoder, and its probes must see the tutorial's vanishing gradient where theory says they
will (a plain tanh RNN at initialisation, through the recurrence alone).
``scripts/compare_cells.py``: BLEU per source-length bucket with paired-bootstrap intervals.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from model.nn.seq2seq import Seq2Seq
from model.text.tokenizer import Tokenizers
from tests.conftest import tiny_config

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


gradient_flow = load_script("gradient_flow")
compare_cells = load_script("compare_cells")


def tiny_pair(steps: int, tokenizers: Tokenizers) -> object:
    generator = torch.Generator().manual_seed(7)
    source = torch.randint(4, tokenizers.source.vocab_size, (1, steps), generator=generator)
    target = torch.randint(4, tokenizers.target.vocab_size, (6,), generator=generator).tolist()
    return gradient_flow.Pair(source, target)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("setting", ["full", "recurrence"])
def test_probes_cover_every_position_of_both_directions(
    tiny_tokenizers: Tokenizers, cell: str, setting: str
) -> None:
    torch.manual_seed(0)
    model = Seq2Seq(tiny_config(tiny_tokenizers, cell=cell)).eval()
    reference = gradient_flow.reference_encoder(model)
    norms = gradient_flow.probe_norms(model, reference, tiny_pair(12, tiny_tokenizers), setting)
    assert sorted(norms) == list(range(12))
    assert all(len(values) == 2 for values in norms.values())  # forward and backward pass
    assert all(math.isfinite(v) and v >= 0 for values in norms.values() for v in values)
    assert max(norms[0]) > 0


def test_a_plain_rnn_at_initialisation_loses_the_gradient_through_its_recurrence(
    tiny_tokenizers: Tokenizers,
) -> None:
    torch.manual_seed(0)
    model = Seq2Seq(tiny_config(tiny_tokenizers, cell="rnn")).eval()
    pairs = [tiny_pair(30, tiny_tokenizers)]
    profile = gradient_flow.geometric_profile(model, pairs, "recurrence", max_distance=29)
    assert profile[29] < profile[0] * 1e-3


def test_attention_gives_far_positions_a_direct_path(tiny_tokenizers: Tokenizers) -> None:
    torch.manual_seed(0)
    model = Seq2Seq(tiny_config(tiny_tokenizers, cell="rnn")).eval()
    pairs = [tiny_pair(30, tiny_tokenizers)]
    full = gradient_flow.geometric_profile(model, pairs, "full", max_distance=29)
    recurrence = gradient_flow.geometric_profile(model, pairs, "recurrence", max_distance=29)
    assert full[29] > recurrence[29] * 100


def test_buckets_count_sentences_and_give_intervals() -> None:
    sources = ["a b", "a b c", " ".join(["w"] * 15), " ".join(["w"] * 60)]
    references = ["tôi yêu mèo", "chúng tôi thấy chó", "một cái nhà lớn", "thành phố nhỏ"]
    hypotheses = {
        "perfect": references,
        "weak": ["tôi yêu chó", "chúng tôi thấy", "một cái nhà", "nhỏ"],
    }
    report = compare_cells.bucket_scores(sources, hypotheses, references, samples=50)
    assert {name: b["sentences"] for name, b in report.items()} == {
        "1-10": 2,
        "11-20": 1,
        "51+": 1,
    }
    first = report["1-10"]["systems"]
    assert first["perfect"]["bleu"] == 100.0
    assert first["weak"]["bleu"] < 100.0
    assert "ci95" in first["weak"] and "p_vs_perfect" in first["weak"]
