"""Attention's products on fixed-point grids, so that their sums are exact: a sentence's
attention is then the same, bit for bit, whatever sentences it is batched with.

A BLAS adds the terms of a dot product in an order it picks by the shapes of the matrices (MKL
on the 2-core test CPU: one order for one row, another for two to four, another for five or
more, and another again when the padded source width changes), and float addition is not
associative. The same sentence alone and in a batch then gets attention weights that differ in
their last bits, and beam search can turn a last bit into another word. When every term of a
sum is a multiple of one power of two and every partial sum fits the significand, every order
gives the exact sum, and the BLAS's choices stop mattering.

So int8 CPU decoding (:class:`model.runtime.shortlist.ShortlistedModel`) keeps an encoder
output's ``keys`` and ``memory`` on grids (:func:`exact_encoder_output`), and attention
(:mod:`model.nn.attention`) puts its side of each product on a grid too:

* ``query . key`` over ``hidden``, in float64: a query (a recurrent output, in ``[-1, 1]``) on
  multiples of ``2^-q`` and each source position's key on multiples of ``2^(e - 22)``, where
  ``2^e`` bounds that position's largest component: integers of at most ``2^q`` and ``2^22``
  units, so a sum of ``hidden`` products stays below ``2^52`` when
  ``q = 30 - ceil(log2(hidden))`` (:func:`query_bits`: 21 bits for the bundled model's 384).
* ``weights . memory`` over source positions, in float32: attention weights on multiples of
  ``2^-12`` and memory (recurrent outputs, in ``[-1, 1]``) on multiples of ``2^-11``. Rounded,
  the ``n`` weights of a row sum to at most ``1 + n 2^-13``, so every partial sum stays below
  2 (below ``2^24`` units of ``2^-23``) for fewer than 8,192 source positions: exact in a
  float32. Both grids are finer than the 7-bit steps of the int8 layer the context goes into
  next, which is why float32 decoding does without them.

The encoder output stores keys and memory already multiplied by the unit of their partner
(``2^-q``, ``2^-12``), so that a step multiplies the partner's integer units straight into
true values. And the softmax (in float64) that turns scores into weights reduces each row at
least :data:`MIN_ROW_WIDTH` wide (:func:`wide_softmax`), so that padding never changes the
order of its sum.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from model.nn.encoder import EncoderOutput
from model.nn.padding import pad_to

KEY_BITS = 22
MEMORY_BITS = 11
WEIGHT_BITS = 12
_SUM_BITS = 52  # every partial sum of query . key below 2^52 units: exact in a float64
# Rows that softmax and log_softmax reduce are made at least this wide (``-inf`` after the
# end): torch sums a row narrower than a CPU's vector of floats (16 with AVX-512) in another
# order than a wider one, so a short sentence alone and padded in a batch would differ in the
# last bit. From this width on, trailing ``-inf`` only adds zeros to the same partial sums.
MIN_ROW_WIDTH = 32


def grid_units(x: Tensor, bits: int) -> Tensor:
    """``x`` (values in ``[-1, 1]``) rounded to multiples of ``2^-bits`` and counted in those
    units: integers, in ``x``'s dtype (exact: the scaling is by a power of two)."""
    return (x * float(2**bits)).round_()


def query_bits(hidden: int) -> int:
    """The query's grid for keys of ``hidden`` components on :data:`KEY_BITS` grids."""
    return _SUM_BITS - KEY_BITS - math.ceil(math.log2(hidden))


def wide_softmax(scores: Tensor) -> Tensor:
    """``softmax`` over the last dimension, computed at least :data:`MIN_ROW_WIDTH` wide."""
    width = scores.size(-1)
    if width >= MIN_ROW_WIDTH:
        return torch.softmax(scores, dim=-1)
    return torch.softmax(pad_to(scores, MIN_ROW_WIDTH, -1, float("-inf")), dim=-1)[..., :width]


def exact_encoder_output(encoder_output: EncoderOutput, dot_product_keys: bool) -> EncoderOutput:
    """``encoder_output`` with ``keys`` (float64) and ``memory`` (float32) on their grids, each
    multiplied by its partner's unit; float64 keys tell attention to take this path. Only for
    attention that takes the keys' dot product with the query (``dot`` and ``general``):
    ``additive`` attention's scores are no sum over products, and it is returned as it is."""
    if not dot_product_keys:
        return encoder_output
    keys = encoder_output.keys
    # each source position on multiples of 2^(e - KEY_BITS), 2^e its largest |component|
    _, exponent = torch.frexp(keys.abs().amax(dim=-1, keepdim=True).float())
    unit = torch.ldexp(torch.ones_like(exponent, dtype=torch.float64), exponent - KEY_BITS)
    keys = (keys.double() / unit).round_().mul_(unit * 2.0 ** -query_bits(keys.size(-1)))
    memory = grid_units(encoder_output.memory.float(), MEMORY_BITS)
    memory = memory.mul_(2.0 ** -(MEMORY_BITS + WEIGHT_BITS))
    return encoder_output._replace(memory=memory, keys=keys)
