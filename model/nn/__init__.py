"""The network: reference and fused recurrent cells, recurrent stacks, attention, encoder,
decoder, the ``Seq2Seq`` model, its ``ModelConfig`` and a padding helper.

Imports ``torch`` and, from the project, only the token ids of :mod:`model.text.tokenizer`.
"""
