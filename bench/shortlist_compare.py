"""Translations with and without a model's shortlist, side by side: how many come out the same,
and every one that does not.

    python bench/shortlist_compare.py --model-dir models/en-vi
    python bench/shortlist_compare.py --model-dir runs/cpu/best --sentences my_sentences.txt

Without ``--sentences`` it uses everyday text of the kind users send: names, numbers, phone
numbers, e-mail addresses, URLs, dates, prices and capitals. A shortlist that drops a word the
model needs shows here as a changed or garbled translation; BLEU on a test set
(``mt-eval --shortlist on`` against ``--shortlist off``) is the other half of the check.
Beam 5, int8 on the CPU, as ``mt-serve`` runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from model.translator import Translator

EVERYDAY = [
    "Hello, my name is Nguyen Van An and I live in Da Nang.",
    "Call me at 0912 345 678 or write to an.nguyen@example.com.",
    "The meeting is on 12/05/2024 at 3:30 PM in room B-204.",
    "Visit https://example.com/docs?id=42 for details.",
    "I bought 3 apples for $2.50.",
    "Barack Obama visited Hanoi in May 2016.",
    "Microsoft and Google are big companies.",
    "Please restart the server and check config.yaml.",
    "Where is the nearest hospital?",
    "I love you.",
    "Thank you very much!",
    "The iPhone 15 costs 999 dollars.",
    "My cat's name is Whiskers.",
    "We will meet Elon Musk in Tokyo next week.",
    "Dr. Smith works at the University of Oxford.",
    "The population of Vietnam is about 100 million people.",
    "Turn left at the second traffic light.",
    "Kubernetes runs containers across many machines.",
    "Her phone number is +84 28 3822 4567.",
    "He scored 27.5 points in the final game.",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--sentences", type=Path, help="one sentence a line (default: built in)")
    parser.add_argument("--beam", type=int, default=5)
    args = parser.parse_args()
    sentences = EVERYDAY
    if args.sentences is not None:
        lines = args.sentences.read_text(encoding="utf-8").splitlines()
        sentences = [line.strip() for line in lines if line.strip()]
    translations = {}
    for mode in ("off", "on"):
        translator = Translator.from_dir(
            args.model_dir, device="cpu", quantize="auto", shortlist=mode
        )
        translations[mode] = translator.translate(sentences, beam=args.beam)
    changed = [
        {"source": source, "without": without, "with": with_shortlist}
        for source, without, with_shortlist in zip(
            sentences, translations["off"], translations["on"], strict=True
        )
        if without != with_shortlist
    ]
    for change in changed:
        print(json.dumps(change, ensure_ascii=False))
    print(json.dumps({"sentences": len(sentences), "identical": len(sentences) - len(changed)}))


if __name__ == "__main__":
    main()
