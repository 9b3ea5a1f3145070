"""The word *năm* ("year") that the model writes before a placeholder standing for no year.

Years are the commonest numbers in the training pairs, and English puts them after ``in`` or
``at`` (``in 2009``: ``vào năm 2009``). So the model learned to write *năm* before a
placeholder (:mod:`model.text.protect`), and it writes it before other spans too: ``Windows 11``
came out as ``Windows năm 11``, ``call 0912 345 678`` as ``gọi 0912 năm 345 678``, ``At 17 she
...`` as ``Năm 17 cô ấy ...`` and ``at jane.doe@example.com`` as ``vào năm
jane.doe@example.com``. On tst2012, 13 of the 15 times it wrote *năm* before a number that was
no year, the reference had no such year.

:func:`drop_false_years` takes that *năm* out again, before the spans are put back. It stays
where the span may be a year (four digits from 1000 to 2099, or a short year written ``'71``
or ``80s`` in the source) and in every sentence whose source speaks of years or of five (*năm*
is also the word for five).
"""

from __future__ import annotations

import re

from model.text.protect import PLACEHOLDER_SLOTS, PLACEHOLDERS

# "năm" or "Năm" as a word, one space, then a placeholder (kept by the substitution)
_YEAR_BEFORE_PLACEHOLDER = re.compile(rf"(?<!\w)[Nn]ăm ([{re.escape(''.join(PLACEHOLDERS))}])")
_FULL_YEAR = re.compile(r"(?:1\d|20)\d\d")
# The source itself speaks of years, or of five: then "năm" may be right anywhere.
_YEAR_OR_FIVE = re.compile(r"\b(?:years?|five)\b", re.IGNORECASE)


def _may_be_year(original: str, source: str) -> bool:
    """Whether a span may be a year: ``1990``, or ``71`` written ``'71`` / ``71s`` in ``source``."""
    if _FULL_YEAR.fullmatch(original):
        return True
    short = re.escape(original)
    return re.search(rf"['’]{short}(?!\d)|(?<!\d){short}s\b", source) is not None


def drop_false_years(translation: str, originals: tuple[str, ...], source: str) -> str:
    """``translation`` (placeholders still in it) without *năm* before each placeholder whose
    original (``originals``, by slot) may not be a year in ``source``; unchanged when
    ``source`` speaks of years or of five."""
    if not originals or _YEAR_OR_FIVE.search(source):
        return translation

    def keep_or_drop(match: re.Match[str]) -> str:
        slot = PLACEHOLDER_SLOTS[match.group(1)]
        if slot >= len(originals) or _may_be_year(originals[slot], source):
            return match.group(0)
        return match.group(1)

    return _YEAR_BEFORE_PLACEHOLDER.sub(keep_or_drop, translation)
