"""Vietnamese without its diacritics, as it is typed without a Vietnamese keyboard
(``khong co dau`` for ``không có dấu``): training writes some source words so
(:mod:`training.tones`), and place names are found in either form (:mod:`model.text.places`).
"""

from __future__ import annotations

import unicodedata

# The two letters whose mark is not a combining character.
_BARRED = str.maketrans("đĐ", "dD")


def strip_diacritics(word: str) -> str:
    """``word`` without tone and vowel marks (``tiếng`` -> ``tieng``, ``Đà`` -> ``Da``), NFC."""
    decomposed = unicodedata.normalize("NFD", word.translate(_BARRED))
    bare = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return unicodedata.normalize("NFC", bare)
