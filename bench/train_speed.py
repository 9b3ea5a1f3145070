"""Training throughput (target tokens/s) of the three cells, fused kernels versus reference cells.

    python bench/train_speed.py --device cpu --json docs/bench/train_speed_cpu.json

Each configuration runs ``--warmup`` untimed steps, then ``--steps`` timed forward+backward+Adam
steps on random batches of ``--batch x --length`` tokens; the median step time is reported.
Random tokens are enough here: speed does not depend on what the tokens mean.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from model.nn.config import ModelConfig
from model.nn.seq2seq import Seq2Seq
from model.text.tokenizer import PAD_ID


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(
    config: ModelConfig, args: argparse.Namespace, device: torch.device, mkldnn: bool
) -> dict:
    with torch.backends.mkldnn.flags(enabled=mkldnn):
        return _measure(config, args, device) | {"mkldnn": mkldnn}


def _measure(config: ModelConfig, args: argparse.Namespace, device: torch.device) -> dict:
    torch.manual_seed(0)
    model = Seq2Seq(config).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=PAD_ID)
    batch, length = args.batch, args.length
    src = torch.randint(4, config.source_vocab_size, (batch, length), device=device)
    tgt = torch.randint(4, config.target_vocab_size, (batch, length + 1), device=device)
    lengths = torch.full((batch,), length, device=device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    times = []
    for step in range(args.warmup + args.steps):
        synchronize(device)
        start = time.perf_counter()
        with autocast:
            logits = model(src, lengths, tgt[:, :-1])
            loss = loss_fn(logits.float().flatten(0, 1), tgt[:, 1:].flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        synchronize(device)
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {
        "cell": config.cell,
        "implementation": config.implementation,
        "median_step_s": round(median, 4),
        "target_tokens_per_s": round(batch * length / median, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--vocab", type=int, default=8000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--length", type=int, default=25)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    parser.add_argument(
        "--input-feeding",
        choices=("on", "off"),
        default="on",
        help="off: the decoder runs over whole sequences (configs/cpu.toml); on: step by step",
    )
    parser.add_argument("--cells", default="rnn,lstm,gru")
    parser.add_argument("--implementations", default="fused,reference")
    parser.add_argument(
        "--mkldnn",
        default="on",
        help="on, off or on,off: oneDNN (mkldnn) RNN kernels on CPU; the decoder runs one "
        "time step per call (input feeding), where their fixed cost per call shows",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = []
    for cell in args.cells.split(","):
        for implementation in args.implementations.split(","):
            config = ModelConfig(
                source_vocab_size=args.vocab,
                target_vocab_size=args.vocab,
                cell=cell,
                implementation=implementation,
                embedding_size=args.hidden,
                hidden_size=args.hidden,
                encoder_layers=args.layers,
                decoder_layers=args.layers,
                input_feeding=args.input_feeding == "on",
            )
            for mkldnn in args.mkldnn.split(","):
                result = measure(config, args, device, mkldnn == "on")
                print(json.dumps(result), flush=True)
                results.append(result)
    report = {
        "device": torch.cuda.get_device_name()
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "results": results,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
