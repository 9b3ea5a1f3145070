"""Subword tokenization with SentencePiece.

Design choice: **one SentencePiece model per language**, not a joint En+Vi model.

* The decoder's softmax then covers Vietnamese pieces only. Vietnamese is written in
  syllables separated by spaces, with roughly 7–8K distinct frequent syllables in IWSLT'15, so a
  small target vocabulary covers it almost word-for-word and the output layer (the dominant
  cost of every decoding step) stays small.
* Each language gets its own vocabulary budget instead of English pieces crowding out
  Vietnamese ones (or vice versa) in a shared vocabulary.
* Copying names and numbers does not need a shared vocabulary: both models use byte fallback,
  so any string survives either side.

Every text is Unicode NFC-normalized before encoding (and before training): Vietnamese arrives
both precomposed (``ệ`` = U+1EC7) and decomposed (``e`` + U+0323 + U+0302), and the same word
must map to the same ids. SentencePiece's own normalization is switched off (``identity``) so
that NFC is the single normalization in force and decoding returns exactly the text encoded.

Byte fallback is on: a character never seen in training becomes its UTF-8 bytes instead of
``<unk>``, so unseen characters (emoji, rare scripts) are never silently lost.
"""

from __future__ import annotations

import io
import os
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import sentencepiece as spm

PAD_ID = 0
UNK_ID = 1
BOS_ID = 2
EOS_ID = 3
SPECIAL_IDS = frozenset({PAD_ID, UNK_ID, BOS_ID, EOS_ID})
BROKEN_BYTES = "\ufffd"  # what SentencePiece decodes byte pieces that form no character to
# SentencePiece threads for a batch's encoding and decoding (it releases the GIL): a quarter
# of the cores, up to 4, the rest left to torch (one on a CPU of up to 7 cores, where a thread
# of SentencePiece's own would wait for a core that torch's workers spin on); and the texts
# that make one more thread worth starting (a thread pool is made per call).
DEFAULT_TEXT_THREADS = max(1, min(4, (os.cpu_count() or 1) // 4))
TEXTS_PER_THREAD = 256


def batch_threads(texts: int, most: int = DEFAULT_TEXT_THREADS) -> int:
    """SentencePiece threads for one call over ``texts`` texts: one per
    ``TEXTS_PER_THREAD`` of them, at least one, at most ``most``."""
    return max(1, min(most, texts // TEXTS_PER_THREAD))


def normalize(text: str) -> str:
    """Unicode NFC; the one normalization every text gets before it meets a model."""
    return unicodedata.normalize("NFC", text)


def seed_sampling(seed: int) -> None:
    """Seed SentencePiece's (process-wide) generator for sampled segmentations; any integer
    works (SentencePiece takes 32 bits, so larger seeds are folded in)."""
    spm.set_random_generator_seed(seed % 2**32)


class TokenizerError(RuntimeError):
    """A SentencePiece model file is missing or unreadable."""


class SubwordTokenizer:
    """One language's SentencePiece model with the project's fixed special ids.

    Ids: ``PAD_ID=0``, ``UNK_ID=1``, ``BOS_ID=2``, ``EOS_ID=3``; pieces start at 4.
    ``encode`` never adds BOS/EOS: the caller decides (the decoder needs BOS in front of
    its input and EOS behind its target).
    """

    def __init__(self, model_proto: bytes, source: str = "<memory>") -> None:
        self._proto = model_proto
        self.source = source
        self._sp = spm.SentencePieceProcessor()
        try:
            self._sp.LoadFromSerializedProto(model_proto)
        except Exception as exc:  # sentencepiece raises bare RuntimeError/OSError
            raise TokenizerError(f"{source}: not a valid SentencePiece model ({exc})") from exc
        ids = (self._sp.pad_id(), self._sp.unk_id(), self._sp.bos_id(), self._sp.eos_id())
        if ids != (PAD_ID, UNK_ID, BOS_ID, EOS_ID):
            raise TokenizerError(
                f"{source}: special ids (pad, unk, bos, eos) are {ids}, "
                f"expected {(PAD_ID, UNK_ID, BOS_ID, EOS_ID)}"
            )
        # Every piece's surface, looked up per id: for attention displays of whole batches,
        # a list index instead of a call into SentencePiece per token.
        self._pieces = tuple(
            str(piece) for piece in self._sp.id_to_piece(list(range(self.vocab_size)))
        )

    @classmethod
    def load(cls, path: str | Path) -> SubwordTokenizer:
        path = Path(path)
        try:
            proto = path.read_bytes()
        except OSError as exc:
            raise TokenizerError(f"{path}: cannot read SentencePiece model ({exc})") from exc
        return cls(proto, source=str(path))

    def save(self, path: str | Path) -> None:
        Path(path).write_bytes(self._proto)

    @property
    def model_proto(self) -> bytes:
        return self._proto

    @property
    def vocab_size(self) -> int:
        return int(self._sp.get_piece_size())

    def encode(self, text: str, *, normalized: bool = False) -> list[int]:
        """NFC-normalize (unless the caller did: ``normalized``) and encode one text to piece
        ids (no BOS/EOS)."""
        return list(self._sp.encode(text if normalized else normalize(text), out_type=int))

    def encode_batch(
        self,
        texts: Sequence[str],
        sample_alpha: float = 0.0,
        *,
        normalized: bool = False,
        threads: int = 1,
    ) -> list[list[int]]:
        """Encode texts, on ``threads`` threads (SentencePiece releases the GIL; the ids are
        those of :meth:`encode`, text by text); ``normalized``: the caller applied NFC.
        ``sample_alpha > 0`` samples a segmentation per text instead of the best one (subword
        regularization, Kudo 2018: smaller alpha, more varied pieces)."""
        texts = list(texts) if normalized else [normalize(t) for t in texts]
        if sample_alpha > 0:
            # one thread: with several, which sentence draws which random numbers varies from
            # call to call, and a seeded (resumable) run would not repeat its segmentations
            encoded = self._sp.encode(
                texts,
                out_type=int,
                enable_sampling=True,
                alpha=sample_alpha,
                nbest_size=-1,
                num_threads=1,
            )
        elif threads > 1:
            encoded = self._sp.encode(texts, out_type=int, num_threads=threads)
        else:
            # One thread means this one: a batch call runs on threads it starts, even one, and
            # on a small CPU whose cores torch's workers hold (they spin a while after each
            # parallel kernel) a new thread can wait a fifth of a second for a core. The
            # service encodes each request (in a worker thread) while a search runs.
            encoded = [self._sp.encode(text, out_type=int) for text in texts]
        return [list(ids) for ids in encoded]

    def nbest(self, text: str, size: int) -> list[list[int]]:
        """The ``size`` likeliest segmentations of ``text`` (NFC), best first."""
        return [
            list(ids)
            for ids in self._sp.nbest_encode(normalize(text), nbest_size=size, out_type=int)
        ]

    def has_pieces(self, pieces: Iterable[str]) -> bool:
        """Whether every one of ``pieces`` is a piece of this vocabulary (not ``<unk>``)."""
        return all(self._sp.piece_to_id(piece) != UNK_ID for piece in pieces)

    def decode(self, ids: Iterable[int]) -> str:
        """Decode ids to text; special ids are skipped, and so are byte pieces that form no
        character."""
        return self.decode_batch([list(ids)])[0]

    def decode_batch(self, id_lists: Sequence[Sequence[int]], threads: int = 1) -> list[str]:
        """:meth:`decode` of each id list, in one SentencePiece call on ``threads`` threads."""
        kept = [
            list(ids) if SPECIAL_IDS.isdisjoint(ids) else [i for i in ids if i not in SPECIAL_IDS]
            for ids in id_lists
        ]
        if threads > 1:
            texts = [str(text) for text in self._sp.decode(kept, num_threads=threads)]
        else:
            texts = [str(self._sp.decode(ids)) for ids in kept]  # one: this one (encode_batch)
        # Byte pieces that form no character (a model that wrote half of "°") decode to U+FFFD:
        # a broken character is never a translation, so it is left out.
        return [text.replace(BROKEN_BYTES, "") if BROKEN_BYTES in text else text for text in texts]

    def pieces(self, ids: Iterable[int]) -> list[str]:
        """The surface piece of each id, for attention displays (``▁`` marks a word start)."""
        return [self._pieces[i] for i in ids]


@dataclass(frozen=True)
class Tokenizers:
    """The source and target language tokenizers of one model."""

    source: SubwordTokenizer
    target: SubwordTokenizer


def train_tokenizer(
    lines: Iterable[str],
    vocab_size: int,
    model_type: str = "unigram",
    character_coverage: float = 1.0,
    seed_sentences: int = 2_000_000,
    user_defined_symbols: Iterable[str] = (),
) -> SubwordTokenizer:
    """Train one SentencePiece model from an iterable of (already clean) sentences.

    ``model_type`` is ``unigram`` or ``bpe``. ``hard_vocab_limit`` is off so that a tiny
    corpus (tests) can still produce a model when it has fewer distinct pieces than asked.
    ``user_defined_symbols`` always stay whole pieces (the placeholders of
    :mod:`model.text.protect`).
    """
    if model_type not in {"unigram", "bpe", "char", "word"}:
        raise ValueError(f"model_type must be unigram, bpe, char or word, got {model_type!r}")
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=(normalize(line) for line in lines),
        model_writer=model,
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=character_coverage,
        byte_fallback=True,
        normalization_rule_name="identity",
        pad_id=PAD_ID,
        unk_id=UNK_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        input_sentence_size=seed_sentences,
        shuffle_input_sentence=True,
        hard_vocab_limit=False,
        split_digits=True,
        user_defined_symbols=list(user_defined_symbols),
        num_threads=2,
        minloglevel=2,
    )
    return SubwordTokenizer(model.getvalue())
