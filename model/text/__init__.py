"""Text before and after the network: cleaning, sentence split and join, casing, protected
spans (URLs, numbers, names as placeholders), full stops, false years, the SentencePiece
tokenizer, and :mod:`model.text.pipeline`, the one ordered pipeline that runs them.

The ground floor: imports only the standard library, ``sentencepiece`` and itself.
"""
