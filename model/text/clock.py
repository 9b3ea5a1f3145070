"""Times of day written on the 24-hour clock before translation: ``7 pm`` -> ``19:00``.

The models learned times from TED talks, where ``a.m.`` and ``p.m.`` are rare, and they get
them wrong in the worst way: ``See you at 7 pm`` came out as ``7 giờ sáng`` (7 in the
morning), and ``3 giờ chiều`` (3 in the afternoon) as ``3 hours``. A time on the 24-hour
clock is a number, which is carried across unchanged (:mod:`model.text.protect`), and it reads
the same in both languages (Vietnamese writes ``19:00`` or ``19 giờ``; English readers know
``19:00``). So an English time with ``am``/``pm`` and a Vietnamese one with its part of the
day (``sáng``, ``trưa``, ``chiều``, ``tối``, ``đêm``) are rewritten so before the model sees
them. A time whose part of the day does not fit its hour (``9 giờ chiều``, ``12 giờ
sáng``, ``15 pm``) is left as it is: the writer's intent is not clear.
"""

from __future__ import annotations

import re

from model.text.hints import CharacterClass

_DIGIT = CharacterClass(r"\d")  # every time of day has one; most sentences have none
_ENGLISH = re.compile(
    r"(?<![\w:.,])(?P<hour>1[0-2]|0?[1-9])(?::(?P<minute>[0-5]\d))? ?"
    r"(?P<half>[ap])\.?m(?P<dot>\.)?(?!\w)",
    re.IGNORECASE,
)
_VIETNAMESE = re.compile(
    r"(?<![\w:.,])(?P<hour>\d{1,2})(?: giờ|h)(?: ?(?P<minute>[0-5]\d)(?: phút)?)? "
    r"(?P<part>sáng|trưa|chiều|tối|đêm)(?!\w)",
    re.IGNORECASE,
)
# The hours each part of the Vietnamese day names, on the 12-hour clock, and what to add.
_PARTS: dict[str, tuple[range, int]] = {
    "sáng": (range(1, 12), 0),  # 1-11 in the morning
    "trưa": (range(11, 13), 0),  # 11-12 around noon (1-2 below)
    "chiều": (range(1, 8), 12),  # 1-7 in the afternoon
    "tối": (range(5, 12), 12),  # 5-11 in the evening
    "đêm": (range(9, 12), 12),  # 9-11 at night (12 and 1-4 below)
}


def _clock(hour: int, minute: str | None) -> str:
    return f"{hour:02d}:{minute or '00'}"


def _english(match: re.Match[str]) -> str:
    hour = int(match["hour"]) % 12 + (12 if match["half"].lower() == "p" else 0)
    time = _clock(hour, match["minute"])
    # "at 7 p.m." ends the sentence: its dot is the full stop too
    after = match.string[match.end() :].lstrip()[:1]
    ends = match["dot"] is not None and (not after or after.isupper())
    return time + "." if ends else time


def _vietnamese(match: re.Match[str]) -> str:
    hour, part = int(match["hour"]), match["part"].lower()
    hours, add = _PARTS[part]
    if part == "trưa" and hour in (1, 2):
        hours, add = range(1, 3), 12
    elif part == "đêm" and hour in (12, 1, 2, 3, 4):
        hours, add = range(0, 13), -12 if hour == 12 else 0
    if hour not in hours:
        return match.group()
    return _clock(hour + add, match["minute"])


def to_24_hour(text: str, lang: str) -> str:
    """``text`` (in ``lang``: ``en`` or ``vi``; any other is returned as it is) with its times
    of day on the 24-hour clock."""
    if not _DIGIT.search(text):
        return text
    if lang == "en":
        return _ENGLISH.sub(_english, text)
    if lang == "vi":
        return _VIETNAMESE.sub(_vietnamese, text)
    return text
