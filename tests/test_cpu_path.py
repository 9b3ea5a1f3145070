"""The CPU path per machine: the rule on the CPU's features, explicit settings over it, and what
the Translator and ``GET /model`` report."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from model.runtime.cpu_path import FEATURES, choose, cpu_features, resolve
from model.translator import Translator
from service.model_info import public_model_info
from service.model_slot import ServedModel

AMX = frozenset({"avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"})
ZEN4 = frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16"})
AVX2 = frozenset({"avx2"})


def test_the_features_come_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile sha_ni\n"
    )
    assert cpu_features(cpuinfo) == {"avx2", "avx512f", "avx512_bf16", "amx_tile"}
    assert cpu_features(cpuinfo) <= set(FEATURES)
    # no cpuinfo (not Linux): what torch's dispatch found, which this machine has too
    assert cpu_features(tmp_path / "missing") <= set(FEATURES)


@pytest.mark.parametrize(
    ("features", "precision", "shortlist"),
    [
        (AMX, "int8", True),
        (ZEN4, "int8", True),
        (AVX2, "int8", True),
        (frozenset(), "float32", True),
    ],
)
def test_the_rule_picks_by_features(
    features: frozenset[str], precision: str, shortlist: bool
) -> None:
    path = choose(features)
    assert (path.precision, path.shortlist, path.chosen_by) == (precision, shortlist, "auto")
    assert path.reason


def test_settings_win_over_the_rule() -> None:
    assert resolve("auto", None, "auto", AMX) == choose(AMX)
    assert resolve("int8", None, "auto", AMX).precision == "int8"
    assert resolve("off", None, "auto", ZEN4).precision == "float32"
    assert resolve("off", True, "auto", ZEN4).precision == "bfloat16"
    never_bf16 = resolve("auto", False, "auto", AMX)
    assert (never_bf16.precision, never_bf16.chosen_by) == ("int8", "settings")
    no_shortlist = resolve("auto", None, "off", ZEN4)
    assert (no_shortlist.precision, no_shortlist.shortlist) == ("int8", False)
    assert no_shortlist.chosen_by == "settings" and "shortlist=off" in no_shortlist.reason
    with pytest.raises(ValueError, match="exclude"):
        resolve("int8", True, "auto", ZEN4)


def test_the_translator_reports_its_path(tiny_model_dir: Path) -> None:
    auto = Translator.from_dir(tiny_model_dir, device="cpu", quantize="auto", shortlist="auto")
    expected = choose(cpu_features())
    reported = auto.model_info["cpu_path"]
    assert reported["chosen_by"] == "auto" and reported["reason"] == expected.reason
    assert auto.precision == expected.precision == reported["precision"]
    served = ServedModel(auto, tiny_model_dir, 1, datetime.now(UTC), 0.1, auto.languages)
    assert public_model_info(served)["cpu_path"] == reported  # GET /model says it too


def test_bfloat16_runs_on_the_cpu(tiny_model_dir: Path) -> None:
    exact = Translator.from_dir(tiny_model_dir, device="cpu")
    bf16 = Translator.from_dir(tiny_model_dir, device="cpu", bf16=True)
    assert (exact.precision, bf16.precision) == ("float32", "bfloat16")
    sentences = ["I love the cat.", "We see a big house today.", "you"]
    translated = bf16.translate_sentences(sentences, bf16.options(beam=2))
    assert [t.source for t in translated] == sentences
    assert all(t.hypotheses[0].target_tokens for t in translated)
