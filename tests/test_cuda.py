"""The CUDA code paths: bf16 decoding, decoder steps as CUDA graphs, a training step and the
service on a GPU.

Marked ``cuda`` (``pytest -m cuda``); without a CUDA device every test skips and says so.
``scripts/gpu-run.sh`` runs them on the GPU machine. The decoding test uses the bundled
model (or ``MT_CUDA_TEST_MODEL``): a trained model, so outputs are real sentences and bf16
should change only the rare near-tie.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch

from model.nn.seq2seq import Seq2Seq
from model.runtime.cuda_graphs import GraphedModel
from model.text.tokenizer import Tokenizers
from model.translator import Translator
from tests.conftest import ENGLISH_WORDS, VIETNAMESE_WORDS, make_sentences, tiny_config
from training.config import config_from_dict
from training.data import EncodedCorpus, EncodedSide, collate
from training.loop import train_step
from training.toy import write_toy_dataset
from training.train import train

REPO = Path(__file__).resolve().parents[1]
MODEL_DIR = Path(os.environ.get("MT_CUDA_TEST_MODEL", REPO / "models" / "en-vi"))

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none here)"),
]

SENTENCES = [
    "Hello, how are you?",
    "Thank you very much.",
    "I love the city. It never sleeps.",
    "Where is the train station?",
    "My grandmother told me a story about her village.",
    "Science is a way of understanding the world around us.",
    "We need to talk about climate change.",
    "The children were playing in the garden when it started to rain.",
    "I want to tell you about a very important idea.",
    "This is the most beautiful place I have ever seen.",
    "Can you help me find my phone?",
    "The meeting starts at 9:30 tomorrow morning.",
    "She works as a doctor in a small hospital.",
    "Music makes people happy.",
    "He didn't know what to say.",
    "Today I'm going to show you something new.",
    "The book is on the table.",
    "Many people around the world do not have clean water.",
    "When I was a child, I wanted to be an astronaut.",
    "Technology is changing the way we live and work.",
    "Please send me an e-mail.",
    "It was a cold and dark night.",
    "Education is the key to a better future.",
    "Thank you so much for listening.",
]
# bf16 rounds logits; a trained model's argmax rarely sits on a near-tie
MIN_IDENTICAL = 0.8


@pytest.fixture(scope="module")
def cpu_translations() -> list[str]:
    translator = Translator.from_dir(MODEL_DIR, device="cpu", quantize="off")
    assert translator.precision == "float32"
    return translator.translate(SENTENCES, beam=1)


@pytest.mark.parametrize("beam", [1, 5])
def test_bf16_on_cuda_agrees_with_fp32_on_cpu(cpu_translations: list[str], beam: int) -> None:
    cuda = Translator.from_dir(MODEL_DIR, device="cuda")
    assert cuda.device.type == "cuda"
    assert cuda.precision == "bfloat16"
    outputs = cuda.translate(SENTENCES, beam=beam)
    assert len(outputs) == len(SENTENCES)
    assert all(text.strip() for text in outputs)
    if beam == 1:
        reference = cpu_translations
    else:
        reference = Translator.from_dir(MODEL_DIR, device="cpu", quantize="off").translate(
            SENTENCES, beam=beam
        )
    same = sum(a == b for a, b in zip(outputs, reference, strict=True))
    differing = [(s, a, b) for s, a, b in zip(SENTENCES, outputs, reference, strict=True) if a != b]
    assert same >= MIN_IDENTICAL * len(SENTENCES), json.dumps(differing, ensure_ascii=False)


def test_bf16_batches_give_the_sentences_alone(cpu_translations: list[str]) -> None:
    """Padding in a large bf16 batch does not change a sentence's greedy translation much."""
    cuda = Translator.from_dir(MODEL_DIR, device="cuda")
    alone = [cuda.translate([sentence], beam=1)[0] for sentence in SENTENCES]
    together = cuda.translate(SENTENCES, beam=1)
    same = sum(a == b for a, b in zip(alone, together, strict=True))
    assert same >= MIN_IDENTICAL * len(SENTENCES)


@pytest.mark.parametrize("beam", [1, 5])
def test_cuda_graph_steps_agree_with_eager_steps(beam: int) -> None:
    """Decoder steps replayed from CUDA graphs (``cuda_graphs``) translate as eager steps do:
    the graph runs the same kernels over a bucket's padded shapes, which may only reorder a
    sum, so at most a rare near-tie changes. The buckets of the search were captured, not
    left eager after a failed capture."""
    eager = Translator.from_dir(MODEL_DIR, device="cuda")
    graphed = Translator.from_dir(MODEL_DIR, device="cuda", cuda_graphs=True)
    assert graphed.model_info["cuda_graphs"] and not eager.model_info["cuda_graphs"]
    sentences = SENTENCES * 3  # 60 sentences: a bucket of 64, and smaller ones as they finish
    expected = eager.translate(sentences, beam=beam)
    found = graphed.translate(sentences, beam=beam)
    again = graphed.translate(sentences, beam=beam)  # replays of graphs captured before
    assert found == again
    same = sum(a == b for a, b in zip(found, expected, strict=True))
    differing = [(a, b) for a, b in zip(found, expected, strict=True) if a != b]
    assert same >= 0.95 * len(sentences), json.dumps(differing, ensure_ascii=False)
    model = graphed.runner.model
    assert isinstance(model, GraphedModel) and model.buckets
    assert all(model._buckets[key] is not None for key in model.buckets)


@pytest.mark.parametrize("rows_per_sentence", [1, 5])
def test_a_cuda_graph_step_matches_the_eager_step(rows_per_sentence: int) -> None:
    """One step, graph against eager on the same rows: the same log-probabilities within
    bf16 rounding, and the same best token in nearly every row."""
    translator = Translator.from_dir(MODEL_DIR, device="cuda", cuda_graphs=True)
    model = translator.runner.model
    assert isinstance(model, GraphedModel)
    encoded = [translator.encode(sentence) for sentence in SENTENCES]
    src, lengths, _ = translator.runner.padded([e.chunks[0] for e in encoded])
    with translator.runner.running():
        encoder_output = model.encode(src, lengths)
        index = torch.arange(len(SENTENCES), device=src.device)
        state = model.reorder(
            model.initial_state(encoder_output), index.repeat_interleave(rows_per_sentence)
        )
        tokens = torch.full_like(index.repeat_interleave(rows_per_sentence), 2)  # BOS
        for _ in range(4):
            eager = model.model.decode_step(tokens, state, encoder_output)
            graph = model.decode_step(tokens, state, encoder_output)
            torch.testing.assert_close(graph[0], eager[0], atol=0.05, rtol=0.02)
            agree = (graph[0].argmax(-1) == eager[0].argmax(-1)).float().mean().item()
            assert agree >= 0.9
            state, tokens = eager[1], eager[0].argmax(-1)


def _batch(tokenizers: Tokenizers) -> Any:
    sources = make_sentences(ENGLISH_WORDS, 32, 11)
    targets = make_sentences(VIETNAMESE_WORDS, 32, 12)
    corpus = EncodedCorpus(
        EncodedSide.from_lists(tokenizers.source.encode_batch(sources)),
        EncodedSide.from_lists(tokenizers.target.encode_batch(targets)),
    )
    return collate(corpus, np.arange(32))


def _step_config(bf16: bool) -> Any:
    return config_from_dict(
        {"train": {"label_smoothing": 0.1, "clip": 1.0, "bf16": bf16, "lr": 1e-3}}
    )


@pytest.mark.parametrize("implementation", ["fused", "reference"])
def test_a_training_step_on_cuda_matches_the_cpu(
    tiny_tokenizers: Tokenizers, implementation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same fp32 step on both devices: the same loss, gradient norm and new weights.

    TF32 off (cuDNN's RNNs use it by default) so both sides compute in full fp32, and plain
    SGD, whose update is proportional to the gradient (Adam's first step is lr x sign(grad),
    which flips on gradients near zero)."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    batch = _batch(tiny_tokenizers)
    results = {}
    for device_name in ("cpu", "cuda"):
        device = torch.device(device_name)
        torch.manual_seed(0)
        model = Seq2Seq(tiny_config(tiny_tokenizers, implementation=implementation)).to(device)
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        nll, grad_norm = train_step(
            model, optimizer, batch.to(device), batch.target_tokens, 1, _step_config(False), device
        )
        weights = {k: v.detach().float().cpu() for k, v in model.state_dict().items()}
        results[device_name] = (nll, grad_norm, weights)
    (cpu_nll, cpu_norm, cpu_weights), (gpu_nll, gpu_norm, gpu_weights) = (
        results["cpu"],
        results["cuda"],
    )
    assert math.isfinite(gpu_nll) and gpu_nll > 0
    assert gpu_nll == pytest.approx(cpu_nll, rel=1e-4)
    assert gpu_norm == pytest.approx(cpu_norm, rel=1e-3)
    torch.manual_seed(0)
    initial = Seq2Seq(tiny_config(tiny_tokenizers, implementation=implementation)).state_dict()
    moved = sum(not torch.equal(initial[name], value) for name, value in cpu_weights.items())
    assert moved >= len(cpu_weights) // 2  # the step changed the weights
    for name, value in cpu_weights.items():
        torch.testing.assert_close(gpu_weights[name], value, rtol=1e-4, atol=1e-5, msg=name)


def test_a_bf16_training_step_on_cuda_lowers_the_loss(tiny_tokenizers: Tokenizers) -> None:
    batch = _batch(tiny_tokenizers)
    device = torch.device("cuda")
    torch.manual_seed(0)
    model = Seq2Seq(tiny_config(tiny_tokenizers)).to(device)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    config = _step_config(True)
    losses = [
        train_step(model, optimizer, batch.to(device), batch.target_tokens, 1, config, device)[0]
        for _ in range(30)
    ]
    assert all(math.isfinite(loss) for loss in losses)
    assert losses[-1] < 0.75 * losses[0]  # fp32 on the CPU: 0.55
    assert all(p.device.type == "cuda" and p.dtype == torch.float32 for p in model.parameters())


def test_training_runs_on_cuda_end_to_end(tmp_path: Path) -> None:
    """mt-train's loop on CUDA with bf16: evaluations, best/ and last/, a falling loss."""
    write_toy_dataset(tmp_path / "data", train_pairs=1000, dev_pairs=50, seed=3)
    config = config_from_dict(
        {
            "model": {"embedding_size": 64, "hidden_size": 64, "dropout": 0.0},
            "tokenizer": {"source_vocab_size": 400, "target_vocab_size": 400, "model_type": "word"},
            "data": {"moses_detokenize": False, "protect_spans": False},
            "train": {
                "batch_tokens": 600,
                "lr": 0.003,
                "warmup_steps": 10,
                "max_steps": 80,
                "eval_every": 40,
                "device": "cuda",
                "bf16": True,
            },
        }
    )
    result = train(config, tmp_path / "data", tmp_path / "run")
    assert result.steps == 80
    assert next(result.model.parameters()).device.type == "cuda"
    metrics = [json.loads(line) for line in result.metrics_path.read_text().splitlines()]
    assert len(metrics) == 2
    assert metrics[-1]["dev_loss"] < metrics[0]["dev_loss"]
    assert (result.best_dir / "config.json").is_file()
    assert (result.last_dir / "config.json").is_file()


def test_the_service_answers_on_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    from service.app import create_app
    from service.settings import Settings

    for name in [key for key in os.environ if key.startswith("MT_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("MT_DEVICE", "cuda")
    monkeypatch.setenv("MT_MODEL_DIR", str(MODEL_DIR))
    settings = Settings()
    assert settings.device == "cuda"
    # the model's own decoding defaults, as the service uses them (MT_BEAM unset)
    expected = Translator.from_dir(MODEL_DIR, device="cuda").translate(SENTENCES[:4])

    async def exchange() -> tuple[dict[str, Any], dict[str, Any], int]:
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://mt.test") as client:
                ready = (await client.get("/ready")).status_code
                info = (await client.get("/model")).json()
                body = {"q": SENTENCES[:4], "source": "en", "target": "vi"}
                answer = await client.post("/translate", json=body)
                assert answer.status_code == 200, answer.text
                return info, answer.json(), ready

    info, answer, ready = asyncio.run(exchange())
    assert ready == 200
    assert info["device"].startswith("cuda")
    assert info["precision"] == "bfloat16"
    translated = answer["translatedText"]
    assert isinstance(translated, list) and len(translated) == 4
    assert all(text.strip() for text in translated)
    # the service also restores capitals; the words are the Translator's
    same = sum(a.casefold() == b.casefold() for a, b in zip(translated, expected, strict=True))
    assert same >= 3, (translated, expected)
