"""Dev evaluation during training: loss per target token and greedy tokenized BLEU."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from model.evaluation import tokenized_bleu
from model.nn.seq2seq import Seq2Seq
from model.search.decode import greedy_search, max_target_lengths
from model.text.protect import restore
from model.text.tokenizer import PAD_ID, Tokenizers
from training.config import RunConfig
from training.data import collate, make_batches
from training.precision import autocast
from training.prepare import DevSet


def _dev_loss(model: Seq2Seq, dev: DevSet, config: RunConfig, device: torch.device) -> float:
    """Cross-entropy per target token (no label smoothing) over the whole dev set."""
    settings = config.train
    loss_sum, tokens = 0.0, 0
    for indices in make_batches(
        dev.corpus.source.lengths,
        dev.corpus.target.lengths,
        settings.batch_tokens,
        seed=0,
        epoch=0,
        shuffle=False,
    ):
        batch = collate(dev.corpus, indices).to(device)
        with autocast(device, settings.bf16, settings.bf16_cpu):
            logits = model(batch.src, batch.src_lengths, batch.tgt_in)
        loss_sum += float(
            F.cross_entropy(
                logits.float().flatten(0, 1),
                batch.tgt_out.flatten(),
                ignore_index=PAD_ID,
                reduction="sum",
            )
        )
        tokens += batch.target_tokens
    return loss_sum / max(tokens, 1)


def _dev_translations(
    model: Seq2Seq, dev: DevSet, tokenizers: Tokenizers, config: RunConfig, device: torch.device
) -> list[str]:
    """Greedy translations of the dev sources (spans restored), in dev order."""
    settings = config.train
    hypotheses: list[str] = [""] * len(dev.corpus)
    order = np.argsort(dev.corpus.source.lengths, kind="stable")  # similar lengths together
    for start in range(0, len(order), settings.eval_batch_sentences):
        indices = order[start : start + settings.eval_batch_sentences]
        batch = collate(dev.corpus, indices).to(device)
        limits = max_target_lengths(batch.src_lengths, ratio=settings.eval_max_len_ratio)
        with autocast(device, settings.bf16):
            result = greedy_search(model, batch.src, batch.src_lengths, limits)
        for index, hypothesis in zip(indices, result.tokens, strict=True):
            decoded = tokenizers.target.decode(hypothesis[0])
            hypotheses[int(index)] = restore(decoded, dev.originals[int(index)]).text
    return hypotheses


@torch.no_grad()
def evaluate(
    model: Seq2Seq,
    dev: DevSet,
    tokenizers: Tokenizers,
    config: RunConfig,
    device: torch.device,
) -> dict[str, float]:
    """Dev loss (per target token, no smoothing) and greedy tokenized BLEU."""
    was_training = model.training
    model.eval()
    loss = _dev_loss(model, dev, config, device)
    hypotheses = _dev_translations(model, dev, tokenizers, config, device)
    model.train(was_training)
    return {
        "dev_loss": loss,
        "dev_ppl": float(np.exp(min(loss, 50.0))),
        "dev_bleu": tokenized_bleu(hypotheses, dev.references_tokenized, config.data.target_lang),
    }
