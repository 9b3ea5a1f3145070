"""How a loaded model runs fast: int8 on the CPU, the lexical shortlist, the decoder's LSTM
step from a token table, the CPU path per machine, decoder steps as CUDA graphs, device names
and the CPU's parallelism plan.

Imports :mod:`model.nn`, :mod:`model.store` and :mod:`model.text`; never the search or the
Translator.
"""
