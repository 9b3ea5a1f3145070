"""Sentences without closing punctuation: translated with a full stop that comes off again.

The model learned from TED transcripts, where almost every sentence ends in punctuation, so it
has hardly ever seen a sentence end on a word. Given one (a single word, a short phrase, a
heading, a list item), it does not stop: ``water`` came out as ``Tất cả nước dưới nước nước,
nước chảy nước nước`` and ``computer`` as ``Những chiếc máy tính máy tính xách máy tính máy
tính``. With a full stop added, the same model writes ``Ở nước.`` and ``Máy tính.``.

So :class:`model.translator.Translator` translates a sentence that ends in a letter or a digit
(:func:`ends_open`) with ``"."`` added, and takes the full stop its translation ends with back
off (:func:`drop_full_stop`): the answer ends the way the input did. A sentence that ends in
an ellipsis gets one too (:func:`ellipsis_like_source`).
"""

from __future__ import annotations

FULL_STOP = "."


def ends_open(text: str) -> bool:
    """Whether ``text`` ends in a letter or a digit (no closing punctuation, quote, bracket or
    symbol), so that it is translated with a full stop added."""
    return bool(text) and text[-1].isalnum()


def drop_full_stop(translation: str) -> str:
    """``translation`` without the one full stop it ends with (an ellipsis ``...`` or any other
    ending stays as the model wrote it)."""
    text = translation.rstrip()
    if text.endswith(FULL_STOP) and not text.endswith(FULL_STOP * 2):
        return text[: -len(FULL_STOP)].rstrip()
    return text


ELLIPSES = ("...", "…")


def ellipsis_like_source(translation: str, source: str) -> str:
    """``translation`` ending with the ellipsis ``source`` ends with (``...`` or ``…``), in
    the source's own form. Software strings end so (``Loading...``, ``Saving file…``), and the
    model kept the dots or not at random (``Đang đọc.``); a question or an exclamation it
    ended with stays."""
    ending = next((mark for mark in ELLIPSES if source.endswith(mark)), None)
    if ending is None:
        return translation
    body = translation.rstrip().rstrip(".…").rstrip()
    if not body or body[-1] in "?!":
        return translation
    return body + ending
