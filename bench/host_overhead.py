"""Host work per sentence around the model's arithmetic: what a fast accelerator waits for.

    MT_DATA_DIR=/work/shared/data/iwslt15 python bench/host_overhead.py --model-dir models/en-vi

Every sentence takes the service's way through the text pipeline: casing
(:func:`model.casing.prepare`), the translator's encode (NFC, span masking, the added full
stop, SentencePiece), one greedy or beam search per batch of ``--batch`` sentences (longest
first), the assembly of each sentence's result (SentencePiece decode, the full stop taken off,
spans restored, target pieces) and :func:`model.casing.restore_case`. The network is replaced
by a stand-in whose steps cost next to nothing (:class:`FreeModel`), so what is timed is the
host's share: on a GPU that is what sets the ceiling on sentences per second.

The stand-in has the interface of :class:`model.seq2seq.Seq2Seq` (``encode``,
``initial_state``, ``decode_step`` returning log-probabilities, ``reorder``, ...) over a
compact target vocabulary of :data:`COMPACT_VOCAB` ids (the special ids, the placeholders and
the most frequent target pieces), so that the search's vocabulary-wide operations are small
too; the target tokenizer maps compact ids to the real ones (:class:`CompactTarget`). Its
output is deterministic and plausible: one target piece per source piece (a placeholder for a
placeholder, ``.`` for ``.``, a frequent Vietnamese piece otherwise), then EOS; each step also
offers a second choice, so a beam has real alternatives to keep.

Prints one JSON object: ``us_per_sentence_greedy`` and ``us_per_sentence_beam5`` (wall clock
of the whole pipeline over all sentences, median of ``--repeats`` runs, divided by the
sentence count; ``--clock thread``: the CPU time of this thread instead, with one text thread,
which a machine busy with other work leaves nearly as it is, where it stretches wall clock),
with the stages of each (``stages``: median microseconds per sentence of
casing, encode, search with assembly, restore; ``search_loop``: the bare search function on
the same batches, without the text steps) and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple, cast

import torch
from torch import Tensor

from model.encoding import EncodedSentence
from model.nn.padding import pad_to
from model.nn.seq2seq import Seq2Seq
from model.store.checkpoint import LoadedModel, load_model
from model.text.pipeline import Segment, needs_model
from model.text.protect import PLACEHOLDERS
from model.text.tokenizer import (
    DEFAULT_TEXT_THREADS,
    EOS_ID,
    PAD_ID,
    SubwordTokenizer,
    Tokenizers,
)
from model.translation import SentenceTranslation
from model.translator import Translator

DATA_DIR = Path(os.environ.get("MT_DATA_DIR", "/work/shared/data/iwslt15"))
COMPACT_VOCAB = 64
PREFERRED_LOG_PROB = -0.1  # the planned piece
SECOND_LOG_PROB = -2.5  # the alternative a beam may keep
OTHER_LOG_PROB = -9.0  # everything else (EOS included, until the plan ends)


def compact_target_ids(target: SubwordTokenizer, size: int) -> list[int]:
    """Real target ids of the compact vocabulary: ids 0..3 and the placeholders keep their
    ids (search and span restoring know them so), then the first pieces that are neither a
    byte nor a placeholder (SentencePiece numbers pieces by frequency)."""
    real = list(range(4 + len(PLACEHOLDERS)))
    candidate = len(real)
    while len(real) < size:
        piece = target.pieces([candidate])[0]
        if not (piece.startswith("<0x") and piece.endswith(">")):
            real.append(candidate)
        candidate += 1
    return real


class CompactTarget(SubwordTokenizer):
    """The target tokenizer seen through the compact vocabulary: ids are mapped to real ids
    before decoding (a list index per token, a few ns of the measured time)."""

    def __init__(self, target: SubwordTokenizer, real_ids: list[int]) -> None:
        super().__init__(target.model_proto, target.source)
        self.real_ids = real_ids

    def _real(self, ids: Iterable[int]) -> list[int]:
        return [self.real_ids[i] for i in ids]

    def decode(self, ids: Iterable[int]) -> str:
        return super().decode(self._real(ids))

    def pieces(self, ids: Iterable[int]) -> list[str]:
        return super().pieces(self._real(ids))


def source_plan(source: SubwordTokenizer, target: SubwordTokenizer, real_ids: list[int]) -> Tensor:
    """``source_vocab`` compact target ids: what the stand-in writes for each source piece
    (the same piece where the compact vocabulary has it, else a frequent one)."""
    compact = {target.pieces([real])[0]: index for index, real in enumerate(real_ids)}
    words = range(4 + len(PLACEHOLDERS), len(real_ids))
    plan = [
        compact.get(piece, words[index % len(words)])
        for index, piece in enumerate(source.pieces(range(source.vocab_size)))
    ]
    plan[PAD_ID] = EOS_ID
    return torch.tensor(plan, dtype=torch.long)


class Plan(NamedTuple):
    """The stand-in's "encoder output": ``tokens: sentences x src_len`` compact target ids to
    write, ``lengths: sentences``, ``weights: sentences x src_len`` (uniform attention)."""

    tokens: Tensor
    lengths: Tensor
    weights: Tensor


class FreeModel:
    """A :class:`model.seq2seq.Seq2Seq` stand-in whose steps cost a few small tensor
    operations: it writes its plan (:func:`source_plan`) and ends. The state is each row's
    position in its plan (``rows``)."""

    def __init__(self, plan: Tensor, vocab: int) -> None:
        self.plan = plan
        self.vocab = vocab
        self.base = torch.full((vocab,), OTHER_LOG_PROB) - torch.arange(vocab) * 1e-3

    # What the Translator asks of a model at construction
    def to(self, device: torch.device | str) -> FreeModel:
        return self

    def eval(self) -> FreeModel:
        return self

    def num_parameters(self) -> int:
        return 0

    # The search interface
    def encode(self, src: Tensor, src_lengths: Tensor) -> Plan:
        lengths = src_lengths.to(src.device)
        mask = torch.arange(src.size(1)).unsqueeze(0) < lengths.unsqueeze(1)
        weights = mask.float() / lengths.clamp(min=1).unsqueeze(1)
        return Plan(self.plan[src], lengths, weights)

    def initial_state(self, encoder_output: Plan) -> Tensor:
        return torch.zeros(encoder_output.tokens.size(0), dtype=torch.long)

    def decode_step(
        self, prev_tokens: Tensor, state: Tensor, encoder_output: Plan
    ) -> tuple[Tensor, Tensor, Tensor]:
        rows, sentences = prev_tokens.numel(), encoder_output.tokens.size(0)
        sentence = torch.arange(rows) // (rows // sentences)
        width = encoder_output.tokens.size(1)
        planned = encoder_output.tokens[sentence, state.clamp(max=width - 1)]
        preferred = planned.masked_fill(state >= encoder_output.lengths[sentence], EOS_ID)
        second = 4 + len(PLACEHOLDERS) + (preferred * 7) % (self.vocab - 4 - len(PLACEHOLDERS))
        log_probs = self.base.expand(rows, -1).clone()
        log_probs.scatter_(1, second.unsqueeze(1), SECOND_LOG_PROB)
        log_probs.scatter_(1, preferred.unsqueeze(1), PREFERRED_LOG_PROB)
        return log_probs, state + 1, encoder_output.weights.index_select(0, sentence)

    @staticmethod
    def reorder(state: Tensor, index: Tensor) -> Tensor:
        return state.index_select(0, index)

    @staticmethod
    def reorder_encoder_output(encoder_output: Plan, index: Tensor) -> Plan:
        return Plan(*(part.index_select(0, index) for part in encoder_output))

    @staticmethod
    def concat_states(states: Sequence[Tensor]) -> Tensor:
        return torch.cat(list(states))

    @staticmethod
    def concat_encoder_outputs(outputs: Sequence[Plan]) -> Plan:
        width = max(output.tokens.size(1) for output in outputs)
        return Plan(
            tokens=torch.cat([pad_to(o.tokens, width, 1, EOS_ID) for o in outputs]),
            lengths=torch.cat([o.lengths for o in outputs]),
            weights=torch.cat([pad_to(o.weights, width, 1) for o in outputs]),
        )


def free_translator(model_dir: Path, text_threads: int = DEFAULT_TEXT_THREADS) -> Translator:
    """The model directory's translator (tokenizers, span masking, decoding defaults) with
    :class:`FreeModel` in place of the network and the compact target vocabulary."""
    loaded = load_model(model_dir)
    source, target = loaded.tokenizers.source, loaded.tokenizers.target
    real_ids = compact_target_ids(target, COMPACT_VOCAB)
    stand_in = FreeModel(source_plan(source, target, real_ids), COMPACT_VOCAB)
    free: LoadedModel = replace(
        loaded,
        model=cast(Seq2Seq, stand_in),
        tokenizers=Tokenizers(source, CompactTarget(target, real_ids)),
    )
    # bf16: the path a GPU takes, without the CPU decoding wrapper, whose token tables and
    # exact attention need a real network (and are arithmetic, not host work)
    return Translator(
        free, device="cpu", bf16=True, max_batch_tokens=10**9, text_threads=text_threads
    )


@dataclass
class Stages:
    """Seconds spent in each stage of one run."""

    case: float = 0.0
    encode: float = 0.0
    search: float = 0.0
    restore: float = 0.0


CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "thread": time.thread_time}


def _timed(stages: Stages, name: str, work: Callable[[], Any], clock: Callable[[], float]) -> Any:
    start = clock()
    result = work()
    setattr(stages, name, getattr(stages, name) + clock() - start)
    return result


def run_pipeline(
    translator: Translator,
    sentences: list[str],
    beam: int,
    batch: int,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[list[str], Stages, list[list[EncodedSentence]]]:
    """Translate ``sentences`` as the service does (casing, encode, search per batch,
    restore), timing each stage; also returns the search batches."""
    stages = Stages()
    pipeline, options = translator.pipeline, translator.options(beam)
    split = [Segment(s, for_model=needs_model(s), source=s) for s in sentences]
    cased: list[Segment] = _timed(
        stages, "case", lambda: pipeline.apply(split, first="case", last="case"), clock
    )
    encode_batch = getattr(translator, "encode_batch", None)  # a tree without it: one by one
    encoded: list[EncodedSentence] = _timed(
        stages,
        "encode",
        lambda: (
            encode_batch([segment.text for segment in cased])
            if encode_batch is not None
            else [translator.encode(segment.text) for segment in cased]
        ),
        clock,
    )
    order = sorted(range(len(encoded)), key=lambda i: encoded[i].longest, reverse=True)
    results: list[SentenceTranslation | None] = [None] * len(encoded)
    batches = []
    for start in range(0, len(order), batch):
        indices = order[start : start + batch]
        batches.append([encoded[i] for i in indices])
        translated = _timed(
            stages, "search", lambda: translator.search(batches[-1], options), clock
        )
        for index, translation in zip(indices, translated, strict=True):
            results[index] = translation
    best = [result.hypotheses[0].text for result in results if result is not None]
    texts = _timed(stages, "restore", lambda: pipeline.restore_case(cased, best), clock)
    return texts, stages, batches


def search_loop(
    translator: Translator,
    batches: list[list[EncodedSentence]],
    beam: int,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Seconds of the bare search over ``batches`` (padding and the search function; no text
    steps, no assembly)."""
    options = translator.options(beam)
    total = 0.0
    for batch in batches:
        rows = [chunk for sentence in batch for chunk in sentence.chunks]
        start = clock()
        translator.runner.search(rows, options)
        total += clock() - start
    return total


def measure(
    translator: Translator,
    sentences: list[str],
    beam: int,
    batch: int,
    repeats: int,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Any]:
    """Median whole-pipeline microseconds per sentence, and the stages of every run."""
    run_pipeline(translator, sentences, beam, batch, clock)  # warm: caches, allocator
    totals, runs, loops = [], [], []
    for _ in range(repeats):
        start = clock()
        _, stages, batches = run_pipeline(translator, sentences, beam, batch, clock)
        totals.append(clock() - start)
        runs.append(stages)
        loops.append(search_loop(translator, batches, beam, clock))
    per = 1e6 / len(sentences)
    return {
        "us_per_sentence": round(statistics.median(totals) * per, 1),
        "all_us_per_sentence": [round(total * per, 1) for total in totals],
        "stages": {
            name: round(statistics.median(getattr(stages, name) for stages in runs) * per, 1)
            for name in ("case", "encode", "search", "restore")
        },
        "search_loop": round(statistics.median(loops) * per, 1),
    }


def read_sentences(path: Path, count: int) -> list[str]:
    """The first ``count`` non-empty lines of ``path``, repeated from the top if it has fewer."""
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    sentences = [line for line in lines if line]
    return [sentences[i % len(sentences)] for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path("models/en-vi"))
    parser.add_argument("--source", type=Path, default=DATA_DIR / "raw" / "tst2013.en")
    parser.add_argument("--sentences", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="wall: elapsed time; thread: this thread's CPU time with one text thread (for a "
        "machine busy with other work; valid with --threads 1)",
    )
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    clock = CLOCKS[args.clock]
    text_threads = DEFAULT_TEXT_THREADS if args.clock == "wall" else 1
    translator = free_translator(args.model_dir, text_threads)
    sentences = read_sentences(args.source, args.sentences)
    greedy = measure(translator, sentences, 1, args.batch, args.repeats, clock)
    beam5 = measure(translator, sentences, 5, args.batch, args.repeats, clock)
    report = {
        "us_per_sentence_greedy": greedy["us_per_sentence"],
        "us_per_sentence_beam5": beam5["us_per_sentence"],
        "greedy": greedy,
        "beam5": beam5,
        "sentences": len(sentences),
        "batch": args.batch,
        "repeats": args.repeats,
        "clock": args.clock,
        "source": str(args.source),
        "model_dir": str(args.model_dir),
        "stand_in": f"FreeModel over {COMPACT_VOCAB} target ids",
        "code": str(Path(sys.modules[Translator.__module__].__file__ or "").resolve().parent),
        "machine": {
            "cpu": _cpu_name(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "load_average_1m": round(os.getloadavg()[0], 2),
        },
    }
    print(json.dumps(report))


def _cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()
