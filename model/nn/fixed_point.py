"""Attention's products on fixed-point grids, so that their sums are exact: a sentence's
attention is then the same, bit for bit, whatever sentences it is batched with.

A BLAS adds the terms of a dot product in an order it picks by the shapes of the matrices (MKL
on the 2-core test CPU: one order for one row, another for two to four, another for five or
more, and another again when the padded source width changes), and float addition is not
associative. The same sentence alone and in a batch then gets attention weights that differ in
their last bits, and beam search can turn a last bit into another word. When every term of a
sum is a multiple of one power of two and every partial sum fits a float64's 53-bit
significand, every order gives the exact sum, and the BLAS's choices stop mattering.

So CPU decoding (:class:`model.runtime.shortlist.ShortlistedModel`) keeps an encoder output's
``memory`` and ``keys`` as float64 on grids (:func:`exact_encoder_output`), and attention
(:mod:`model.nn.attention`) puts its side of each product on a grid too:

* ``query . key`` over ``hidden``: a query (a recurrent output, in ``[-1, 1]``) on multiples of
  ``2^-q`` and each source position's key on multiples of ``2^(e - 22)``, where ``2^e`` bounds
  that position's largest component: integers of at most ``2^q`` and ``2^22`` units, so a sum
  of ``hidden`` products is below ``2^52`` when ``q = 30 - ceil(log2(hidden))``
  (:func:`query_bits`: 21 bits for the bundled model's 384).
* ``weights . memory`` over source positions: attention weights (in ``[0, 1]``) on multiples of
  ``2^-20`` and memory (recurrent outputs, in ``[-1, 1]``) on multiples of ``2^-22``: exact for
  fewer than ``2^11`` = 2,048 positions (the translator cuts sentences at 200 subwords).

The grids keep 20 to 22 significant bits, about what float32's 24 keep. The encoder output
stores memory and keys already multiplied by the unit of their partner (``2^-20``, ``2^-q``), so
that a step multiplies the partner's integer units straight into true values. And the softmax
(in float64) that turns scores into weights reduces each row at least :data:`MIN_ROW_WIDTH`
wide (:func:`wide_softmax`), so that padding never changes the order of its sum.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from model.nn.encoder import EncoderOutput
from model.nn.padding import pad_to

MEMORY_BITS = 22
WEIGHT_BITS = 20
_SUM_BITS = 52  # every partial sum below 2^52 units: exact in a float64
# Rows that softmax and log_softmax reduce are made at least this wide (``-inf`` after the
# end): torch sums a row narrower than a CPU's vector of floats (16 with AVX-512) in another
# order than a wider one, so a short sentence alone and padded in a batch would differ in the
# last bit. From this width on, trailing ``-inf`` only adds zeros to the same partial sums.
MIN_ROW_WIDTH = 32


def grid_units(x: Tensor, bits: int) -> Tensor:
    """``x`` (values in ``[-1, 1]``) rounded to multiples of ``2^-bits`` and counted in those
    units: integers, as float64 (every step exact: the scaling is by a power of two)."""
    return (x.double() * float(2**bits)).round_()


def rows_on_grid(x: Tensor, bits: int) -> Tensor:
    """``x: ... x n`` as float64, each row on multiples of ``2^(e - bits)`` where ``2^e``
    bounds the row's largest absolute value (a row depends on itself only)."""
    _, exponent = torch.frexp(x.abs().amax(dim=-1, keepdim=True).float())
    scale = torch.ldexp(torch.ones_like(exponent, dtype=torch.float64), bits - exponent)
    return torch.round(x.double() * scale) / scale


def wide_softmax(scores: Tensor) -> Tensor:
    """``softmax`` over the last dimension, computed at least :data:`MIN_ROW_WIDTH` wide."""
    width = scores.size(-1)
    if width >= MIN_ROW_WIDTH:
        return torch.softmax(scores, dim=-1)
    return torch.softmax(pad_to(scores, MIN_ROW_WIDTH, -1, float("-inf")), dim=-1)[..., :width]


def query_bits(hidden: int) -> int:
    """The query's grid for keys of ``hidden`` components on :data:`MEMORY_BITS` grids."""
    return _SUM_BITS - MEMORY_BITS - math.ceil(math.log2(hidden))


def exact_encoder_output(encoder_output: EncoderOutput, dot_product_keys: bool) -> EncoderOutput:
    """``encoder_output`` with ``memory`` (and ``keys``, when attention takes their dot
    product with the query: ``dot`` and ``general``) as float64 on their grids, each already
    multiplied by the unit of what it meets at every step (the attention weights' ``2^-20``,
    the query's ``2^-q``): a product of the other side's integer units with them is then the
    true value, with no rescaling per step."""
    memory = grid_units(encoder_output.memory, MEMORY_BITS).mul_(
        2.0 ** -(MEMORY_BITS + WEIGHT_BITS)
    )
    keys = encoder_output.keys
    if dot_product_keys:
        keys = rows_on_grid(keys, MEMORY_BITS).mul_(2.0 ** -query_bits(keys.size(-1)))
    return encoder_output._replace(memory=memory, keys=keys)
