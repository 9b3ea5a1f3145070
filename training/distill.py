"""Sequence-level distillation (Kim and Rush, 2016): teachers translate a corpus's sources, and
a model trained on those translations learns what the teachers know in a form it can hold.

A width-384 model is short of capacity: the talks and software strings compete for it, and the
mean of two differently trained models' probabilities translates better than either
(:class:`model.search.ensemble.Ensemble`). One model cannot serve as two at a CPU's pace, but
it can be trained on their beam-search translations: targets that are consistent from one
sentence to the next are easier to learn than human references. The distilled pairs are
mixed into training as one more corpus (``[[corpora]]``, ``moses_detokenize = false``), the
original pairs staying in.

:func:`distill` writes ``<prefix>.<source>`` at once and appends ``<prefix>.<target>`` a
chunk at a time, flushed, so a stopped run continues from the lines already written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from model.evaluation import TextTranslator, looks_moses_tokenized
from training.data import ParallelDataError, TextCleaner, find_corpus_file, read_lines

logger = logging.getLogger("training")

# Whether a file is Moses-tokenized is read from its first lines.
_SNIFF_LINES = 2000


def corpus_sources(data_dir: Path, prefix: str, lang: str) -> list[str]:
    """The cleaned sources of ``data_dir``'s ``prefix`` corpus in ``lang``, as training reads
    them: Moses-tokenized files (the IWSLT release) unescaped and detokenized."""
    lines = read_lines(find_corpus_file(data_dir, prefix, lang))
    cleaner = TextCleaner(lang, looks_moses_tokenized(lines[:_SNIFF_LINES]))
    return [cleaner.clean(line) for line in lines]


def _trim_to_whole_lines(path: Path) -> int:
    """Removes a line cut short by a stop from the end of ``path``; returns its whole lines."""
    if not path.exists():
        return 0
    text = path.read_bytes()
    whole = text[: text.rfind(b"\n") + 1]
    if len(whole) != len(text):
        path.write_bytes(whole)
    return whole.count(b"\n")


def distill(
    translator: TextTranslator,
    sources: list[str],
    source_path: Path,
    target_path: Path,
    beam: int = 5,
    chunk: int = 2000,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Write ``sources`` to ``source_path`` and their translations to ``target_path``, one
    line each, ``chunk`` sentences at a time; lines already in ``target_path`` (an earlier,
    stopped run over the same sources) are kept. Returns how many were translated now."""
    if chunk < 1:
        raise ValueError(f"chunk must be positive, got {chunk}")
    source_path.parent.mkdir(parents=True, exist_ok=True)
    written = source_path.read_text(encoding="utf-8") if source_path.exists() else None
    wanted = "".join(line + "\n" for line in sources)
    done = _trim_to_whole_lines(target_path)
    if done and written != wanted:
        raise ParallelDataError(
            f"{target_path} holds translations of other sources than {source_path} would; "
            "give an empty output folder"
        )
    if done > len(sources):
        raise ParallelDataError(f"{target_path} has more lines than there are sources")
    source_path.write_text(wanted, encoding="utf-8")
    with target_path.open("a", encoding="utf-8") as out:
        for start in range(done, len(sources), chunk):
            translations = translator.translate(sources[start : start + chunk], beam)
            # one line per source: a translation never spans lines in a corpus file
            out.writelines(" ".join(text.split()) + "\n" for text in translations)
            out.flush()
            if progress is not None:
                progress(min(start + chunk, len(sources)), len(sources))
    return len(sources) - done
