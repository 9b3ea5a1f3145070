"""int8 inference (model/runtime/quantize.py): when it applies, that it translates like float32, the
float32 fallback, and where the precision is reported (Translator, mt-eval, GET /model)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from torch import nn

import model.runtime.quantize as quantize_module
from cli.evaluate import main as eval_main
from model.runtime.quantize import quantize_int8, wants_int8
from model.store.locations import bundled_model_dir
from model.translator import Translator
from service.app import create_app
from service.settings import Settings, SettingsError, load_settings

# Everyday sentences the bundled model translates well; int8 may flip a near-tie here and
# there, but most translations must come out identical.
SENTENCES = [
    "Thank you very much.",
    "I love the city.",
    "Where is the train station?",
    "My father was a teacher.",
    "We need more water.",
    "The children are playing in the garden.",
    "This is a very important problem.",
    "I don't know what to do.",
    "She has lived here for ten years.",
    "Science can help us understand the world.",
    "Today I want to talk about climate change.",
    "He works in a hospital.",
    "The book is on the table.",
    "Can you help me?",
    "We started this project two years ago.",
    "Music makes people happy.",
    "I was born in a small village.",
    "The internet changed everything.",
    "Let me tell you a story.",
    "Women and girls deserve an education.",
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_auto_is_int8_on_the_cpu_and_off_on_cuda() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert wants_int8("auto", cpu)
    assert wants_int8("int8", cpu)
    assert not wants_int8("off", cpu)
    assert not wants_int8("auto", cuda)
    assert not wants_int8("off", cuda)
    with pytest.raises(ValueError, match="CPU only"):
        wants_int8("int8", cuda)
    with pytest.raises(ValueError, match="auto, int8, off"):
        wants_int8("int4", cpu)


@pytest.fixture(scope="module")
def bundled_fp32() -> Translator:
    return Translator.from_dir(bundled_model_dir(), device="cpu", quantize="off")


@pytest.fixture(scope="module")
def bundled_int8() -> Translator:
    return Translator.from_dir(bundled_model_dir(), device="cpu", quantize="int8")


@pytest.mark.parametrize("beam", [1, 5])
def test_int8_translations_agree_with_float32_on_most_sentences(
    bundled_fp32: Translator, bundled_int8: Translator, beam: int
) -> None:
    assert bundled_int8.precision == "int8", bundled_int8.model_info["quantization"]
    assert bundled_fp32.precision == "float32"
    float32 = bundled_fp32.translate(SENTENCES, beam=beam)
    int8 = bundled_int8.translate(SENTENCES, beam=beam)
    same = sum(a == b for a, b in zip(float32, int8, strict=True))
    assert same >= 0.75 * len(SENTENCES), list(zip(float32, int8, strict=True))
    assert all(int8), "int8 must never lose a translation"


def test_quantizing_keeps_the_original_and_reports_the_full_size(
    bundled_fp32: Translator, bundled_int8: Translator
) -> None:
    info = bundled_int8.model_info
    assert info["precision"] == "int8"
    assert info["quantization"]["implementation"]
    assert info["quantization"]["fallback_reason"] is None
    # int8 modules keep their weights outside nn.Parameter; the model's size is still reported
    assert info["parameters"] == bundled_fp32.model_info["parameters"]
    assert bundled_fp32.model_info["quantization"] is None


def test_no_working_implementation_falls_back_to_float32(
    monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(model: nn.Module) -> nn.Module:
        raise RuntimeError("no int8 kernels on this platform")

    monkeypatch.setattr(quantize_module, "_IMPLEMENTATIONS", (("broken", broken),))
    module = nn.Linear(4, 4)
    outcome = quantize_int8(module)
    assert outcome.model is module and outcome.implementation is None
    assert outcome.reason is not None and "no int8 kernels" in outcome.reason
    assert "serving float32" in caplog.text

    translator = Translator.from_dir(tiny_model_dir, device="cpu", quantize="int8")
    assert translator.precision == "float32"
    assert "no int8 kernels" in translator.model_info["quantization"]["fallback_reason"]
    reference = Translator.from_dir(tiny_model_dir, device="cpu")
    assert translator.translate(["the cat sees a dog."]) == reference.translate(
        ["the cat sees a dog."]
    )


def test_quantizing_raises_no_deprecation_warnings_at_the_caller(tiny_model_dir: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        translator = Translator.from_dir(tiny_model_dir, device="cpu", quantize="int8")
        translator.translate(["we love the big house."], beam=2)
    assert translator.precision == "int8"


def assert_mode_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, field: str, spelled: str, bad: str
) -> None:
    """``variable`` defaults to ``auto``, is read in any case, and a bad value names it."""
    assert getattr(load_settings(), field) == "auto"
    monkeypatch.setenv(variable, spelled)
    assert getattr(load_settings(), field) == spelled.strip().lower()
    monkeypatch.setenv(variable, bad)
    with pytest.raises(SettingsError, match=variable):
        load_settings()
    monkeypatch.delenv(variable)


async def model_info_and_translation(settings: Settings) -> tuple[dict[str, Any], int]:
    """``GET /model`` of a started app, and the status of one ``POST /translate``."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mt.test") as client:
            info = (await client.get("/model")).json()
            translated = await client.post(
                "/translate", json={"q": "I love the cat.", "source": "en", "target": "vi"}
            )
    return info, translated.status_code


def test_settings_default_to_auto_and_reject_int8_on_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    assert_mode_setting(monkeypatch, "MT_QUANTIZE", "quantize", "OFF", "int4")
    with pytest.raises(SettingsError, match="CPU only"):
        load_settings(quantize="int8", device="cuda")


@pytest.mark.anyio
@pytest.mark.parametrize(("quantize", "precision"), [("auto", "int8"), ("off", "float32")])
async def test_get_model_reports_the_precision(
    tiny_model_dir: Path, quantize: str, precision: str
) -> None:
    settings = Settings(model_dir=tiny_model_dir, device="cpu", quantize=quantize)  # type: ignore[arg-type]
    info, status = await model_info_and_translation(settings)
    assert info["precision"] == precision
    assert status == 200


def test_mt_eval_reports_the_precision(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "test.en"
    reference = tmp_path / "test.vi"
    source.write_text("I love the cat.\nWe see a big house.\n", encoding="utf-8")
    reference.write_text("tôi yêu con mèo.\nchúng tôi thấy một ngôi nhà lớn.\n", encoding="utf-8")
    common = ["--model", str(tiny_model_dir), "--src", str(source), "--ref", str(reference)]
    for flag, precision in (("int8", "int8"), ("off", "float32")):
        assert eval_main([*common, "--device", "cpu", "--quantize", flag, "--quiet"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["precision"] == precision
