"""Sentences join a running search and come out translated (continuous batching):
:class:`TranslationStream`, what :meth:`model.translator.Translator.open_stream` returns and the
service's batcher keeps per decoding setting.

It works through the public faces of a :class:`~model.runner.SearchRunner` (padding rows,
running the model) and an :class:`~model.assembly.Assembler` (results back to text), so it
imports neither the Translator nor its internals.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from model.assembly import Assembler, Found, hypotheses_of
from model.encoding import EncodedSentence
from model.runner import SearchRunner
from model.search.options import SearchOptions
from model.translation import SentenceTranslation


class TranslationStream:
    """``add`` takes encoded sentences (host work only) and returns a handle per sentence;
    ``advance`` lets them in, runs a few decoder steps and returns ``(handle, translation)``
    for the sentences that are done (a chunked sentence once all of its chunks are);
    ``cancel`` drops sentences nobody waits for. One caller at a time.
    """

    def __init__(self, runner: SearchRunner, assembler: Assembler, options: SearchOptions) -> None:
        self._runner = runner
        self._assembler = assembler
        self.options = options
        self._stream = runner.open_stream(options)
        self._sentences: dict[int, EncodedSentence] = {}
        self._rows: dict[int, tuple[int, int]] = {}  # row handle -> (sentence handle, chunk)
        self._found: dict[int, list[list[Found] | None]] = {}  # per sentence, per chunk
        self._handles = 0

    def __len__(self) -> int:
        """Sentences added and not yet returned or cancelled."""
        return len(self._sentences)

    def add(self, sentences: Sequence[EncodedSentence]) -> list[int]:
        handles = list(range(self._handles, self._handles + len(sentences)))
        self._handles += len(sentences)
        rows: list[tuple[int, ...]] = []
        owners: list[tuple[int, int]] = []
        for handle, sentence in zip(handles, sentences, strict=True):
            self._sentences[handle] = sentence
            self._found[handle] = [None] * sentence.rows
            rows.extend(sentence.chunks)
            owners.extend((handle, chunk) for chunk in range(sentence.rows))
        if rows:
            src, src_lengths, max_len = self._runner.padded(rows)
            row_handles = self._stream.add(src, src_lengths, max_len)
            self._rows.update(zip(row_handles, owners, strict=True))
        return handles

    def cancel(self, handles: Iterable[int]) -> None:
        dropped = set(handles) & self._sentences.keys()
        for handle in dropped:
            del self._sentences[handle], self._found[handle]
        rows = [row for row, (owner, _) in self._rows.items() if owner in dropped]
        for row in rows:
            del self._rows[row]
        self._stream.cancel(rows)

    def advance(self) -> list[tuple[int, SentenceTranslation]]:
        done = [h for h, sentence in self._sentences.items() if not sentence.rows]
        if len(self._stream):
            with self._runner.running():
                finished = self._stream.advance()
            for row in finished:
                owner, chunk = self._rows.pop(row.handle)
                parts = self._found[owner]
                parts[chunk] = hypotheses_of(row.tokens, row.scores, row.attention)
                if all(part is not None for part in parts):
                    done.append(owner)
        sentences = [self._sentences.pop(handle) for handle in done]
        chunks = [[part for part in self._found.pop(handle) if part is not None] for handle in done]
        translated = self._assembler.assemble_batch(sentences, chunks, self.options)
        return list(zip(done, translated, strict=True))
