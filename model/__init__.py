"""The translation model, from network layers to the :class:`~model.translator.Translator`.

Sub-packages, lowest first (a package imports only from those listed before it):

* :mod:`model.text` — text before and after the network: cleaning, sentences, casing,
  protected spans, the subword tokenizer, and the one ordered text pipeline;
* :mod:`model.nn` — the network: cells, recurrent stacks, attention, encoder, decoder,
  ``Seq2Seq`` and its ``ModelConfig``;
* :mod:`model.store` — model directories on disk: checkpoints, atomic writes, where the
  bundled model lives;
* :mod:`model.search` — greedy and beam search over a ``Seq2Seq``, the continuous beam
  stream, and the ``SearchOptions`` every caller passes;
* :mod:`model.runtime` — how a loaded model runs fast: int8, the lexical shortlist, the LSTM
  token table, device names and CPU parallelism.

On top: :mod:`model.translation` (what a translation returns), :mod:`model.translator` (the
facade that the service, the CLIs and training use) and its helpers. Beside them, imported by
anyone: :mod:`model.evaluation` (BLEU, chrF, Moses) and :mod:`model.log_format`.
Nothing here imports ``service``, ``training`` or ``cli``.
"""
