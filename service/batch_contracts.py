"""What the batcher (:mod:`service.batcher`) needs from a model and its observer, and the
errors it answers callers with.

The model side is a protocol so that tests can stand in for the Translator:
:class:`BatchModel` encodes each sentence once and opens a :class:`SentenceStream` per decoding
setting (``model.translator.Translator`` fits).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar

from model.search.options import SearchOptions

Result_co = TypeVar("Result_co", covariant=True)


class SearchInput(Protocol):
    """An encoded sentence as the batcher sizes it (``model.translator.EncodedSentence``)."""

    @property
    def tokens(self) -> int: ...  # source subwords, what the queue limits count

    @property
    def rows(self) -> int: ...  # search rows: 1, or one per chunk of a too-long sentence

    @property
    def longest(self) -> int: ...  # the longest row: the padded width it forces on a batch


Encoded = TypeVar("Encoded", bound=SearchInput)
Encoded_contra = TypeVar("Encoded_contra", bound=SearchInput, contravariant=True)


class SentenceStream(Protocol[Encoded_contra, Result_co]):
    """A running search that sentences join and leave (``model.translator.TranslationStream``):
    ``add`` is host work only, ``advance`` runs the model and returns the finished sentences
    by handle."""

    def __len__(self) -> int: ...

    def add(self, sentences: Sequence[Encoded_contra]) -> list[int]: ...

    def advance(self) -> Sequence[tuple[int, Result_co]]: ...

    def cancel(self, handles: Iterable[int]) -> None: ...


class BatchModel(Protocol[Encoded, Result_co]):
    """What the batcher needs from a model (``model.translator.Translator`` fits): encode a
    request's sentences once, and open a stream per decoding setting."""

    def encode_batch(self, sentences: Sequence[str]) -> list[Encoded]: ...

    def open_stream(self, options: SearchOptions) -> SentenceStream[Encoded, Result_co]: ...


class BatchObserver(Protocol):
    """Receives the batcher's numbers (``service.metrics.ServiceMetrics`` implements it)."""

    def queue_depth_changed(self, depth: int) -> None: ...

    def batch_finished(
        self, sentences: int, source_tokens: int, padded_tokens: int, seconds: float, ok: bool
    ) -> None: ...


class QueueFullError(RuntimeError):
    """The queue cannot take the request's tokens now; the client should retry later."""

    def __init__(self, waiting: int, requested: int, capacity: int) -> None:
        super().__init__(
            f"the translation queue is full ({waiting} source tokens waiting, this request "
            f"has {requested}, capacity {capacity})"
        )
        self.waiting = waiting
        self.requested = requested
        self.capacity = capacity


class RequestTooLargeError(ValueError):
    """The request alone has more source tokens than the queue can ever hold."""

    def __init__(self, requested: int, capacity: int) -> None:
        super().__init__(
            f"the request has {requested} source tokens, more than the translation queue "
            f"can ever hold ({capacity}); send less text per request"
        )
        self.requested = requested
        self.capacity = capacity


class BatcherClosedError(RuntimeError):
    """The batcher is shutting down and takes no new work."""
