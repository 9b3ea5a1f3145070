"""Dates and days of the week, written the way the target language writes them.

The models learned dates from TED talks, where few are spoken, and they garble them:
``March 5th`` came out as ``tháng 3 5 tháng 3``, ``ngày 5 tháng 3 năm 2024`` as ``December 5th
3 in 2024``, and ``Wednesday`` (not one piece of the English vocabulary) was copied as a name
or became ``Ngày nay`` (today). A date or a weekday has one right translation, so it is found
in the source and carried across as a protected span (:mod:`model.text.protect`) whose
translation is written here: the placeholder comes back as ``ngày 5 tháng 3`` or ``March 5``.

English into Vietnamese: ``March 5``, ``March 5th, 2024``, ``5 March 2024``, ``the 5th of
March`` (the number with the month), ``March 2024``, and the names of the days (``Monday``,
``Sundays``). Vietnamese into English: ``ngày 5 tháng 3 (năm 2024)``, ``tháng 3 năm 2024``,
``Chủ nhật`` and ``thứ Hai`` ... ``thứ Bảy`` (also ``thứ 2`` ... ``thứ 7``) where the words
say a day is meant: a capital (``thứ Tư``) or a word of time before them (``vào thứ tư``);
``thứ hai`` alone is also "the second".

A month alone (``in August``) and a date in digits (``05/03/2024``, a number) are left as they
were: the models translate the first and copy the second.
"""

from __future__ import annotations

import re

from model.text.hints import CharacterClass
from model.text.protect import PLACEHOLDER_SLOTS, PLACEHOLDERS
from model.text.spans import Span, longest_apart

MONTHS_EN = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
WEEKDAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# thứ Hai (the second day) is Monday ... thứ Bảy is Saturday; Sunday is Chủ nhật.
WEEKDAYS_VI = ("thứ Hai", "thứ Ba", "thứ Tư", "thứ Năm", "thứ Sáu", "thứ Bảy", "Chủ nhật")
_DAY_NUMBERS_VI = ("hai", "ba", "tư", "năm", "sáu", "bảy")

_MONTH_NUMBER = {name.lower(): index + 1 for index, name in enumerate(MONTHS_EN)}
_MONTH_NUMBER.update({name[:3].lower(): index + 1 for index, name in enumerate(MONTHS_EN)})
_MONTH_NUMBER["sept"] = 9
# A month is written with its capital (``may``, ``march`` and ``mar`` are words).
_MONTH = "|".join(name.capitalize() for name in sorted(_MONTH_NUMBER, key=len, reverse=True))
# Every month's name starts so: a text without one of these has no date, and is not scanned
# with the date pattern (about 18 µs a sentence with a digit).
_MONTH_START = re.compile("Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec")


def _day(name: str) -> str:
    return rf"(?P<{name}>3[01]|[12]\d|0?[1-9])(?:st|nd|rd|th)?"


def _year(name: str) -> str:
    return rf"(?P<{name}>1\d{{3}}|2\d{{3}})"


_ENGLISH_DATE = re.compile(
    rf"(?<![\w.])(?:(?P<md>(?P<month>{_MONTH})\.? {_day('day')}(?:,? {_year('year')})?)"
    rf"|(?:[Tt]he )?{_day('day2')} (?:of )?(?P<month2>{_MONTH})(?:,? {_year('year2')})?"
    rf"|(?P<month3>{_MONTH}),? {_year('year3')})(?!\w)"
)
_ENGLISH_WEEKDAY = re.compile(rf"(?<!\w)(?P<day>{'|'.join(WEEKDAYS_EN)})s?(?!\w)", re.IGNORECASE)

_VIETNAMESE_DATE = re.compile(
    r"(?<!\w)(?:ngày (?P<day>3[01]|[12]\d|0?[1-9]) tháng (?P<month>1[0-2]|0?[1-9])"
    r"(?: năm (?P<year>[12]\d{3}))?"
    r"|tháng (?P<month2>1[0-2]|0?[1-9]) năm (?P<year2>[12]\d{3}))(?!\w|[/.,]\d)",
    re.IGNORECASE,
)
# A word of time before "thứ hai" makes it a day, not "the second".
_TIME_WORDS = "vào|hôm|ngày|sáng|trưa|chiều|tối|đêm|mỗi|các|từ|đến|tới|trước|sau|và|hoặc|hay"
_VIETNAMESE_WEEKDAY = re.compile(
    rf"(?<!\w)(?:(?P<sunday>chủ nhật)"
    rf"|(?:(?P<time>{_TIME_WORDS}) )?(?P<thu>thứ) (?P<day>{'|'.join(_DAY_NUMBERS_VI)}|[2-7]))"
    r"(?!\w)",
    re.IGNORECASE,
)
_DIGIT = CharacterClass(r"\d")


def _rendered(match: re.Match[str], rendering: str, start: int | None = None) -> Span:
    """The span of ``match`` (from ``start``) with its ``rendering``."""
    begin = match.start() if start is None else start
    return Span(begin, match.end(), match.string[begin : match.end()], rendering)


def _vietnamese_date(day: str | None, month: str, year: str | None) -> str:
    date = f"tháng {int(month)}" if day is None else f"ngày {int(day)} tháng {int(month)}"
    return f"{date} năm {year}" if year else date


def _english_date(day: str | None, month: str, year: str | None) -> str:
    name = MONTHS_EN[int(month) - 1]
    if day is None:
        return f"{name} {year}"
    return f"{name} {int(day)}, {year}" if year else f"{name} {int(day)}"


def _english_dates(text: str) -> list[Span]:
    found = []
    for match in _ENGLISH_DATE.finditer(text):
        month = match["month"] or match["month2"] or match["month3"]
        number = str(_MONTH_NUMBER[month.lower()])
        day = match["day"] or match["day2"]
        year = match["year"] or match["year2"] or match["year3"]
        found.append(_rendered(match, _vietnamese_date(day, number, year)))
    return found


def _english_weekdays(text: str) -> list[Span]:
    found = []
    for match in _ENGLISH_WEEKDAY.finditer(text):
        index = [day.lower() for day in WEEKDAYS_EN].index(match["day"].lower())
        found.append(_rendered(match, WEEKDAYS_VI[index]))
    return found


def _means_a_day(match: re.Match[str]) -> bool:
    """Whether ``thứ hai`` ... ``thứ 7`` names a day: after a word of time, or written with a
    capital (``thứ Hai``, ``Thứ 2``); alone, ``thứ hai`` is "the second" as often."""
    day = match["day"]
    return bool(match["time"]) or day[:1].isupper() or (day.isdigit() and match["thu"][0] == "T")


def _vietnamese_dates(text: str) -> list[Span]:
    found = []
    for match in _VIETNAMESE_DATE.finditer(text):
        month = match["month"] or match["month2"]
        year = match["year"] or match["year2"]
        found.append(_rendered(match, _english_date(match["day"], month, year)))
    return found


def _vietnamese_weekdays(text: str) -> list[Span]:
    found = []
    for match in _VIETNAMESE_WEEKDAY.finditer(text):
        if match["sunday"]:
            found.append(_rendered(match, WEEKDAYS_EN[6]))
        elif _means_a_day(match):
            day = match["day"].lower()
            index = int(day) - 2 if day.isdigit() else _DAY_NUMBERS_VI.index(day)
            found.append(_rendered(match, WEEKDAYS_EN[index], start=match.start("thu")))
    return found


def find_calendar(text: str, source: str, target: str) -> list[Span]:
    """The dates and weekdays of ``text`` (in ``source``) with their renderings in ``target``,
    left to right, none overlapping another; none for any other pair than English and
    Vietnamese."""
    # Cheap tests first: every date has a digit (an English one a month's name), every English
    # weekday "day" (any case), every Vietnamese one "thứ" or "chủ nhật"; most sentences have
    # none of them.
    found: list[Span] = []
    if (source, target) == ("en", "vi"):
        if _DIGIT.search(text) and _MONTH_START.search(text):
            found += _english_dates(text)
        if "day" in text or "DAY" in text:
            found += _english_weekdays(text)
    elif (source, target) == ("vi", "en"):
        if _DIGIT.search(text):
            found += _vietnamese_dates(text)
        lowered = text.lower()
        if "thứ " in lowered or "chủ nhật" in lowered:
            found += _vietnamese_weekdays(text)
    return longest_apart(found)


# A day (not a month) takes "on" in English; the model often writes "in" or "at", as before
# the years and numbers its placeholders mostly stood for in training.
_ENGLISH_DAY = re.compile(
    rf"(?:{'|'.join(WEEKDAYS_EN)})|(?:{'|'.join(MONTHS_EN)}) \d{{1,2}}(?:, \d{{4}})?"
)


_VIETNAMESE_RENDERING = re.compile(r"(?:ngày|tháng) \d|thứ |Chủ nhật")


def _is_rendered(original: str, target: str) -> bool:
    """Whether a span's ``original`` may be one of the renderings made here."""
    if target == "en":
        return _ENGLISH_DAY.fullmatch(original) is not None
    return target == "vi" and _VIETNAMESE_RENDERING.match(original) is not None


_WORD_BEFORE_PLACEHOLDER = re.compile(rf"(?<!\S)(\S+) ([{''.join(PLACEHOLDERS)}])")


def tidy_before_dates(translation: str, originals: tuple[str, ...], target: str) -> str:
    """``translation`` (placeholders still in it) with the word before a rendered date
    mended: in English, ``in``, ``at`` or ``into`` before a day becomes ``on``; in
    Vietnamese, a word the rendering starts with is not written twice (``ngày`` before
    ``ngày 5 tháng 3``), and ``trên``, ``tại`` or ``ở`` before a date becomes ``vào``."""
    if not any(_is_rendered(original, target) for original in originals):
        return translation

    def mended(match: re.Match[str]) -> str:
        slot = PLACEHOLDER_SLOTS[match.group(2)]
        original = originals[slot] if slot < len(originals) else ""
        before = match.group(1)
        if (
            target == "en"
            and _ENGLISH_DAY.fullmatch(original)
            and before.lower() in ("in", "at", "into")
        ):
            return ("On" if before[0].isupper() else "on") + " " + match.group(2)
        if target == "vi" and _VIETNAMESE_RENDERING.match(original):
            if original.split(" ", 1)[0].lower() == before.lower():
                return match.group(2)
            if before.lower() in ("trên", "tại", "ở"):  # "on" a day is "vào", as in "at" one
                return ("Vào" if before[0].isupper() else "vào") + " " + match.group(2)
        return match.group(0)

    return _WORD_BEFORE_PLACEHOLDER.sub(mended, translation)
