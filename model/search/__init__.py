"""Search over a ``Seq2Seq``: batched greedy and beam search, the per-step scoring they share,
the continuous beam stream that sentences join and leave, and :class:`SearchOptions`, the
decoding settings every caller passes.

Imports :mod:`model.nn` and the token ids of :mod:`model.text.tokenizer`; never the
Translator, the runtime or the store.
"""
