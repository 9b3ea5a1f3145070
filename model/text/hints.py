"""Whether a text has any character of a class, answered without a regex scan for ASCII text.

The span finders (:mod:`model.text.spans`) and casing skip their patterns for a text that
lacks what every match needs (a digit, a ``%``, a capital). Asking a regex costs about a
microsecond for a sentence, most of it walking the characters one opcode at a time; an ASCII
text (most of them) answers the same question in one C pass over its bytes, with every byte
outside the class deleted. A text with other characters is asked with the regex itself.
A pattern whose matches all start with one character is tried only where that character is
(:func:`matches_at`).
"""

from __future__ import annotations

import re


class CharacterClass:
    """One character class, such as ``[\\d@]``: :meth:`search` tells whether a text has a
    character of it, exactly as ``re.search`` with the class would. The ASCII characters of
    the class are found by asking the class itself about each, so the two answers agree by
    construction."""

    def __init__(self, pattern: str) -> None:
        self.pattern = re.compile(pattern)
        # the ASCII bytes outside the class: deleting them leaves those inside
        self._others = bytes(
            code for code in range(128) if self.pattern.fullmatch(chr(code)) is None
        )

    def search(self, text: str) -> bool:
        """Whether ``text`` has a character of the class."""
        if text.isascii():
            return len(text.encode().translate(None, self._others)) > 0
        return self.pattern.search(text) is not None


def matches_at(text: str, character: str, pattern: re.Pattern[str]) -> bool:
    """``pattern.search(text)`` for a pattern whose every match starts with ``character``: it
    is tried only where the text has that character (a sentence has a ``.`` or two, most
    often its full stop), which costs less than scanning every character for a start."""
    at = text.find(character)
    while at >= 0:
        if pattern.match(text, at):
            return True
        at = text.find(character, at + 1)
    return False
