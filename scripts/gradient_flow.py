"""How far back does the gradient reach? The tutorial's §1.4, measured on our models.

    python scripts/gradient_flow.py --data ../shared/data/iwslt15 \
        --model rnn=runs/cells-rnn/best --model gru=runs/cells-gru/best \
        --model lstm=runs/cells-lstm/best --json docs/gradients.json --plot docs/gradients.png

For each model, and for a freshly initialised copy of it (same config and seed as training),
the encoder is unrolled step by step over long dev sentences (tst2012, at least
``--min-pieces`` source subwords). A zero "probe" is added to every encoder hidden state
``h_t``, so the gradient on the probe is the *total* derivative ∂loss/∂h_t: through the
recurrence and through attention. The loss is the cross-entropy of the last target word
(teacher-forced). Two settings:

* ``full``: the model as it runs; attention gives every ``h_t`` a direct path to the loss.
* ``recurrence``: attention reads a detached copy of the encoder states, so the only way
  back to ``h_t`` is through the encoder's final state and the recurrence, the
  encoder–decoder of the tutorial (no attention). This is where vanishing gradients show.

Each direction of the bidirectional encoder is counted by its own distance from its last
step (``T-1-t`` forwards, ``t`` backwards). The report gives, per distance, the geometric
mean of ‖∂loss/∂h_t‖ over sentences and directions (norms span orders of magnitude).
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.nn import functional as F

from model.evaluation import moses_detokenize
from model.nn.encoder import EncoderOutput
from model.nn.recurrent import FusedRecurrent, RecurrentState, ReferenceRecurrent
from model.nn.seq2seq import Seq2Seq
from model.store.checkpoint import load_model
from model.text.tokenizer import BOS_ID, Tokenizers

SETTINGS = ("full", "recurrence")


@dataclass(frozen=True)
class Pair:
    """One dev pair as ids: ``source: 1 x T``; ``target``: the target pieces, no BOS/EOS."""

    source: Tensor
    target: list[int]


def long_pairs(data: Path, tokenizers: Tokenizers, min_pieces: int, limit: int) -> list[Pair]:
    """The first ``limit`` tst2012 pairs whose source has at least ``min_pieces`` subwords."""
    english = moses_detokenize((data / "tst2012.en").read_text("utf-8").splitlines(), "en")
    vietnamese = moses_detokenize((data / "tst2012.vi").read_text("utf-8").splitlines(), "vi")
    pairs = []
    for source, target in zip(english, vietnamese, strict=True):
        source_ids = tokenizers.source.encode(source)
        target_ids = tokenizers.target.encode(target)
        if len(source_ids) >= min_pieces and target_ids:
            pairs.append(Pair(torch.tensor([source_ids]), target_ids))
        if len(pairs) == limit:
            break
    return pairs


def reference_encoder(model: Seq2Seq) -> ReferenceRecurrent:
    """The encoder's recurrence as the tutorial's cells, with the trained (fused) weights."""
    fused = model.encoder.rnn
    if not isinstance(fused, FusedRecurrent):
        raise TypeError("expected a model trained with implementation = 'fused'")
    config = model.config
    if config.encoder_layers != 1:
        raise ValueError("the probe unrolls a 1-layer encoder; this model has more layers")
    reference = ReferenceRecurrent(
        config.cell,
        config.embedding_size,
        config.encoder_hidden_size,
        1,
        config.bidirectional,
        0.0,
        config.gru_variant,
    )
    reference.load_fused(fused)
    return reference


def unroll(
    cell: torch.nn.Module, kind: str, inputs: Tensor, reverse: bool
) -> tuple[list[Tensor], list[Tensor], RecurrentState]:
    """Run one direction over ``inputs: 1 x T x E``; each step's ``h`` gets a zero probe.

    Returns the probes (by source position), the states ``h_t`` (by position) and the last
    state."""
    steps = inputs.size(1)
    hidden_size: int = cell.hidden_size  # type: ignore[assignment]
    hidden = inputs.new_zeros(1, hidden_size)
    state: RecurrentState = (hidden, hidden.clone()) if kind == "lstm" else (hidden,)
    probes: list[Tensor] = [inputs.new_zeros(0)] * steps
    outputs: list[Tensor] = [inputs.new_zeros(0)] * steps
    for position in reversed(range(steps)) if reverse else range(steps):
        step = cell(inputs[:, position], state if kind == "lstm" else state[0])
        new_state = step if isinstance(step, tuple) else (step,)
        probe = torch.zeros_like(new_state[0], requires_grad=True)
        state = (new_state[0] + probe, *new_state[1:])
        probes[position], outputs[position] = probe, state[0]
    return probes, outputs, state


def probe_norms(
    model: Seq2Seq, reference: ReferenceRecurrent, pair: Pair, setting: str
) -> dict[int, list[float]]:
    """‖∂loss/∂h_t‖ of the last target word, keyed by distance from each direction's end;
    ``reference``: the model's encoder as cells (:func:`reference_encoder`)."""
    embedded = model.encoder.embedding(pair.source)
    directions = [(reference.cells[0], False)]
    if model.config.bidirectional:
        directions.append((reference.cells[1], True))
    runs = [unroll(cell, model.config.cell, embedded, reverse) for cell, reverse in directions]
    memory = torch.cat([torch.stack(outputs, dim=1) for _, outputs, _ in runs], dim=-1)
    final = tuple(
        torch.cat([last[slot] for _, _, last in runs], dim=-1).unsqueeze(0)
        for slot in range(len(runs[0][2]))
    )
    check, _ = model.encoder(pair.source, torch.tensor([pair.source.size(1)]))
    if not torch.allclose(check, memory, atol=1e-4):
        raise AssertionError("the unrolled encoder does not reproduce the model's encoder")
    attended = memory.detach() if setting == "recurrence" else memory
    encoder_output = EncoderOutput(
        memory=attended,
        keys=model.decoder.attention.precompute_keys(attended),
        mask=torch.ones(1, memory.size(1), dtype=torch.bool),
        final=final,
    )
    # Inputs BOS, t1 .. t(n-1): the last position predicts the last word t(n).
    target_in = torch.tensor([[BOS_ID, *pair.target[:-1]]])
    logits = model.decoder(target_in, model.initial_state(encoder_output), encoder_output)
    loss = F.cross_entropy(logits[:, -1], torch.tensor([pair.target[-1]]))
    probes = [probe for probes, _, _ in runs for probe in probes]
    gradients = torch.autograd.grad(loss, probes, allow_unused=True)
    steps = pair.source.size(1)
    norms: dict[int, list[float]] = defaultdict(list)
    for index, gradient in enumerate(gradients):
        direction, position = divmod(index, steps)
        distance = position if directions[direction][1] else steps - 1 - position
        norms[distance].append(0.0 if gradient is None else gradient.norm().item())
    return norms


def geometric_profile(
    model: Seq2Seq, pairs: list[Pair], setting: str, max_distance: int
) -> dict[int, float]:
    """Geometric mean of the norms at each distance up to ``max_distance`` (which every
    sentence reaches, so each point averages the same sentences); zeros floored at 1e-30."""
    collected: dict[int, list[float]] = defaultdict(list)
    reference = reference_encoder(model)
    for pair in pairs:
        for distance, values in probe_norms(model, reference, pair, setting).items():
            if distance <= max_distance:
                collected[distance].extend(values)
    return {
        distance: math.exp(sum(math.log(max(v, 1e-30)) for v in values) / len(values))
        for distance, values in sorted(collected.items())
    }


def initialised_like(model: Seq2Seq, seed: int) -> Seq2Seq:
    """A fresh model with the trained one's config, initialised as training starts."""
    torch.manual_seed(seed)
    return Seq2Seq(model.config).eval()


def plot(results: dict[str, dict[str, dict[int, float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for axis, setting in zip(axes, SETTINGS, strict=True):
        for name, by_setting in results.items():
            profile = by_setting[setting]
            style = "--" if name.endswith("(init)") else "-"
            axis.plot(list(profile), list(profile.values()), style, label=name)
        axis.set_yscale("log")
        axis.set_xlabel("distance from the end of the encoder's pass (steps)")
        axis.set_title(f"‖∂loss/∂h_t‖, {setting}")
        axis.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("geometric mean over long tst2012 sentences")
    axes[1].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="IWSLT'15 directory")
    parser.add_argument("--model", action="append", required=True, help="NAME=MODEL_DIR")
    parser.add_argument("--min-pieces", type=int, default=40, help="long: this many subwords")
    parser.add_argument("--sentences", type=int, default=64, help="how many long sentences")
    parser.add_argument("--seed", type=int, default=1234, help="seed of the initialised copy")
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    torch.set_grad_enabled(True)
    results: dict[str, dict[str, dict[int, float]]] = {}
    for spec in args.model:
        name, _, directory = spec.partition("=")
        loaded = load_model(directory)
        pairs = long_pairs(args.data, loaded.tokenizers, args.min_pieces, args.sentences)
        for label, model in ((name, loaded.model), (f"{name} (init)", None)):
            model = model if model is not None else initialised_like(loaded.model, args.seed)
            results[label] = {
                s: geometric_profile(model, pairs, s, args.min_pieces - 1) for s in SETTINGS
            }
            last = results[label]["recurrence"]
            print(
                f"{label}: {len(pairs)} sentences; recurrence-only norm at distance 0 "
                f"{last[0]:.3g}, at {max(last)} {last[max(last)]:.3g}"
            )
    args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
