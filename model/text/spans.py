"""Spans of a text that translation must carry across unchanged, and where they are.

URLs, e-mail addresses and numbers (:func:`find_spans`); markup (:func:`find_markup`); format
specifiers, template fields and key combinations (:func:`find_specifiers`); at inference also
amounts, phone numbers and measurements (:func:`find_amounts`), technical tokens
(:func:`find_code_tokens`), symbols and emoji (:func:`find_symbols`) and names the model does
not know (:func:`find_names`). :func:`spans_to_mask` puts them together, one span wherever
several overlap; :mod:`model.text.protect` replaces them with placeholders and puts them back.

Every finder first looks for a character its pattern cannot match without (a digit, ``@``,
``<``, ``%``...): most sentences have no span at all and are not scanned with the slower
patterns.
"""

from __future__ import annotations

import bisect
import itertools
import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from model.text.hints import CharacterClass, matches_at
from model.text.name_words import NameWord, name_words

_URL = r"(?:https?://|ftp://|www\.)[^\s<>\"'`]+"
_EMAIL = r"[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
# Digits with inner separators: 7, 1990, 3:30, 25.50, 1,200,000, 12/05/2024, 2024-05-12.
# Not glued to a letter in front (MP3, H2O stay text) and never ending on a separator.
_NUMBER = r"(?<![^\W\d_])\d+(?:[.,:/-]\d+)*(?!\d)"
_SPAN = re.compile(f"(?P<url>{_URL})|{_EMAIL}|{_NUMBER}")
# Technical tokens that are copied, never translated: handles and hashtags, snake_case,
# paths, file and host names, codes that mix letters and digits, key combinations.
_CODE_TOKEN = re.compile(
    r"[@#]\w*[^\W\d_]\w*(?:[.-]\w+)*"  # @john_doe, #MachineLearning
    r"|(?:[A-Za-z]:\\|~?\.{0,2}/)[^\s\\/]+(?:[\\/][^\s\\/]+)*[\\/]?"  # C:\x\y, /usr/x, ./a
    r"|[^\W_]+(?:/[^\W_][\w.-]*){2,}"  # src/model/search.py
    # before snake_case, so that report_2024.pdf is one token, not report_2024 and ".pdf"
    r"|_*[^\W_][\w-]+(?:\.[\w-]{2,})+(?:/[^\s<>\"'`]*)?"  # config.yaml, example.com/docs
    r"|\w*[^\W_]_\w+"  # user_id, max_len, __init__
    r"|(?=[\w-]*\d)(?=[\w-]*[^\W\d_])[^\W_]+(?:-[^\W_]+)*"  # X7K9P2, ABC-123, MP3
    r"|[^\W_]+(?:\+[^\W_]+)+|[A-Za-z](?:\+\+|#)"  # Ctrl+C, Alt+F4, C++, C#
)
# A number with its sign, a phone number: carried whole at inference. The training data masked
# bare numbers, so the model carries a number but translates, moves or drops a sign beside it
# ("$799" came out as "799 $", "€45" and "12.5%" as "45" and "12.5"). Vietnamese writes its
# currency as a word after the number too (250.000 đồng, 50.000đ, 100 VND), which the
# Vietnamese→English model translated wrongly ("250.000 gay").
_MONEY_SIGNS = "$€£¥₫₹₩"
# đồng as a currency, not the first half of a word (đồng hồ: clock, đồng nghiệp: colleague...)
_DONG_COMPOUNDS = "hồ|nghiệp|ý|thời|bào|chí|minh|phục|loại|dạng|đội|hương|cảm|tình|nhất|bộ|lòng"
_DONG = rf"(?i:vnđ|vnd|đ|đồng(?!\s+(?:{_DONG_COMPOUNDS})(?!\w)))"
# A measurement in the unit symbols both languages write alike ("2.5 kg", "25°C", "4 GB"): the
# model carried the number and translated the symbol into a word, wrongly ("2.5 kích"), or
# dropped it; a degree sign came back as broken bytes.
_UNITS = (
    "°[CFcf]|°|km/h|km²|km|kg|kcal|kHz|kWh|kW|kbps|kB|KiB|KB|Kbps|cm²|cm³|cm|mm|mg|ml|mL|mAh|mV|ms"
    "|m²|m³|MB|MiB|MHz|Mbps|MW|m|µm|µg|µs|nm|ns|g|GB|GiB|GHz|Gbps|TB|TiB|PB|L|Hz|Wh|W|V|px|dpi|fps"
)
_AMOUNT = re.compile(
    rf"(?<![\w$])(?:[A-Z]{{1,2}})?[{_MONEY_SIGNS}] ?\d+(?:[.,]\d+)*(?!\d)"  # $25.50, US$5, € 45
    rf"|(?<![\w.,])\d+(?:[.,]\d+)* ?(?:[%‰{_MONEY_SIGNS}]|{_DONG})(?![\w$])"  # 12.5%, 45€, 100 ₫
    rf"|(?<![\w.,])\d+(?:[.,]\d+)* ?(?:{_UNITS})(?![\w/°²³])"  # 2.5 kg, 25°C, 4 GB
    r"|(?<![\w#])#\d+(?!\w)"  # issue #4521, room #12
    r"|(?P<phone>(?<![\w+])\+\d{1,3}(?:[ .-]?(?:\(\d{1,4}\)|\d{1,4})){2,}(?!\d)"  # +84 912 345 678
    r"|(?<![\w.,])0\d{1,3}(?:[ .-]\d{2,4}){2,}(?!\d))"  # 0912 345 678, 020 7946 0958
)
_PHONE_DIGITS = 7  # a "phone number" with fewer digits is something else ("+1 2 3")
# Markup in a sentence ("see <b>this</b> page", "line<br/>", "<!-- note -->"): copied as is,
# wherever it stands (a tag touches the word it wraps). Training data carries it so; texts
# translated whole never reach this with tags: they are translated between their tags
# (model/document.py).
_TAG = r"</?[A-Za-z][\w:.-]*(?:\s[^<>]*)?/?>"
_MARKUP = re.compile(rf"{_TAG}|<!--.*?-->", re.DOTALL)
_TAG_ONLY = re.compile(_TAG)  # where no comment can end: no "-->" ahead
# Format specifiers and template fields of software strings, copied byte for byte in training
# and at inference alike: printf (%s, %d, %1$s, %-5.2f, %lld, %@, %%), Python (%(name)s), Qt
# (%1, %n), double and single braces ({{user}}, {{ user.name }}, {0}, {name}, {0:.2f}, {}),
# ${var}, :name (Laravel, Rails), character entities (&amp;, &#8230;) and key combinations
# (Ctrl+S, Shift+Alt+F4). A printf flag is never a space: "50% of" is a percentage.
_SPECIFIER = re.compile(
    r"%(?:\d+\$)?[-+0#']*(?:\d+|\*)?(?:\.(?:\d+|\*))?(?:hh|ll|[hlLqjzt]|I64|I32)?"
    r"[diouxXeEfFgGaAcspn@](?![^\W\d_])"
    r"|%\([\w.-]+\)[-+0#]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]"
    r"|%%|(?<![\w%])%\d{1,2}(?![\w$])"
    r"|\{\{\s*[\w.]+\s*\}\}|\{(?:[\w.\[\]]*)(?:![rsa])?(?::[^{}\s]*)?\}"
    r"|\$\{[\w.]+\}"
    r"|(?<![^\s(\[\"']):[A-Za-z_]\w*"
    r"|&(?:[A-Za-z]{2,8}|#\d{2,5}|#x[0-9A-Fa-f]{2,4});"
    r"|(?<![\w+])(?:Ctrl|Control|Alt|AltGr|Shift|Cmd|Command|Super|Meta|Option|Fn|Win)"
    r"(?:\+(?:[A-Z][a-z]*\d*|[A-Za-z0-9]|F\d{1,2}|[^\w\s]))+(?![\w+])"
)
# Sentence punctuation around a token that is not part of it ("see config.yaml.").
_CODE_TRAILING = ".,;:!?)]}'\"’”"
# Words to translate, not codes: ordinals and decades (1st, 3rd, 1990s) and a number joined
# to words (3-year-olds, 24-hour, 5-star).
_NUMBER_WORD = re.compile(r"\d+(?:st|nd|rd|th|s)|\d+(?:[.,]\d+)?(?:-[^\W\d_]+)+", re.IGNORECASE)

# Sentence punctuation that follows a URL is not part of it ("see example.com/a.").
_URL_TRAILING = ".,;:!?)]}'\""

# A run of more than LONG_RUN characters without a space (a pasted blob, a hash, a line of
# dashes) is searched for URLs and numbers only: an e-mail address or a technical token is
# never that long, and looking for one costs time quadratic in the run's length (each start
# position scans to the run's end). Spans never hold whitespace, so searching the text around
# such runs finds exactly what searching the whole text would.
LONG_RUN = 100
_LONG_RUN = re.compile(rf"(?<!\S)\S{{{LONG_RUN + 1},}}")
_URL_OR_NUMBER = re.compile(f"(?P<url>{_URL})|{_NUMBER}")
_NUMBERS = re.compile(_NUMBER)

# What a match of each pattern cannot do without: a text (or, for _CODE_TOKEN, a run of
# non-space characters: none of its branches matches a space) that has none of it is not
# scanned with the much slower pattern itself. Most sentences have no span at all.
_DIGIT_OR_AT = CharacterClass(r"[\d@]")  # _NUMBER, _EMAIL; _URL: "://" or "www."
_CODE_HINT = CharacterClass(r"[@#\\/_+\d]")  # the branches of _CODE_TOKEN but one:
_DOT_WORD = re.compile(r"\.[\w-]{2}")  # config.yaml's
_AMOUNT_HINT = CharacterClass(r"\d")  # every branch of _AMOUNT has a digit
_NON_SPACE = re.compile(r"\S+")
# Every branch of _SPECIFIER starts with one of these but the key combinations, which hold a
# "+"; a plain sentence has none of them and is not scanned with the pattern.
_SPECIFIER_HINT = CharacterClass(r"[%{$:&+]")


def _may_have_spans(text: str) -> bool:
    return _DIGIT_OR_AT.search(text) or "://" in text or "www." in text


def _may_have_code(text: str) -> bool:
    return _CODE_HINT.search(text) or matches_at(text, ".", _DOT_WORD)


@dataclass(frozen=True)
class Span:
    """``text``, found at ``start:end`` of a text; ``rendering``: what its translation gets in
    its place, where that is not ``text`` itself (a date written the target language's way,
    :mod:`model.text.calendar`)."""

    start: int
    end: int
    text: str
    rendering: str | None = None


def _stretches(text: str) -> Iterator[tuple[int, int, bool]]:
    """``(start, end, long)``: ``text`` cut into its long runs (``long``) and what lies between
    them, in order; every stretch between two runs starts and ends at whitespace."""
    position = 0
    if len(text) <= LONG_RUN:  # too short for one
        yield 0, len(text), False
        return
    for run in _LONG_RUN.finditer(text):
        yield position, run.start(), False
        yield run.start(), run.end(), True
        position = run.end()
    yield position, len(text), False


def _search(
    text: str, pattern: re.Pattern[str], long_runs: re.Pattern[str]
) -> Iterator[re.Match[str]]:
    """``pattern.finditer(text)`` outside the long runs, ``long_runs`` inside them."""
    for start, end, long in _stretches(text):
        yield from (long_runs if long else pattern).finditer(text, start, end)


def find_spans(text: str) -> list[Span]:
    """The protected spans of ``text``, left to right, not overlapping (in a long run: URLs
    and numbers only)."""
    if not _may_have_spans(text):
        return []
    # Without "@", "://" and "www." no address or URL can match: numbers alone are looked for
    # (the e-mail branch would otherwise scan each word up to its end from every letter).
    urls = "@" in text or "://" in text or "www." in text
    found = _search(text, _SPAN, _URL_OR_NUMBER) if urls else _search(text, _NUMBERS, _NUMBERS)
    spans = []
    for match in found:
        value = _trim_url(match.group()) if urls and match.group("url") else match.group()
        if value:
            spans.append(Span(match.start(), match.start() + len(value), value))
    return spans


def find_names(text: str, known: Callable[[str], bool]) -> list[Span]:
    """The runs of name-like words of ``text`` (one space apart) that hold a word ``known``
    rejects both as it is and in lower case, left to right. A sentence's first word is left
    out of a run when it is a known word in lower case (``Ask Nguyen Van An``) or stands
    alone in Title case (``Cancel``: more often a word than a name)."""
    runs: list[list[NameWord]] = []
    previous_end = -1
    # Only name-like words can be in a run; a word that is not one between two of them
    # leaves more than a space between them, which ends the run as well.
    for start, end, word in name_words(text):
        if runs and text[previous_end:start] == " ":
            runs[-1].append((start, end, word))
        else:
            runs.append([(start, end, word)])
        previous_end = end
    spans = []
    first_alnum = 0 if text[:1].isalnum() else _first_alnum(text)
    for run in runs:
        start, _, first = run[0]
        if start <= first_alnum and (known(first.lower()) or (len(run) == 1 and first.istitle())):
            run = run[1:]  # capitalised by its place: "Cancel", "Photosynthesis is ..."
        if any(not known(word) and not known(word.lower()) for _, _, word in run):
            start, end = run[0][0], run[-1][1]
            spans.append(Span(start, end, text[start:end]))
    return spans


def _first_alnum(text: str) -> int:
    return next((i for i, c in enumerate(text) if c.isalnum()), len(text))


def find_code_tokens(text: str) -> list[Span]:
    """Technical tokens of ``text`` (``_CODE_TOKEN``) standing alone between spaces, without
    sentence punctuation after them; ordinals, decades and number-word compounds (``3rd``,
    ``1990s``, ``24-hour``) excepted; none in a long run."""
    if not _may_have_code(text):
        return []
    spans = []
    # Word by word (a match never holds a space), and only in the words where a match can be
    # and that are no long run: the pattern costs about a microsecond a character, and in a
    # long run time quadratic in its length. finditer with bounds sees the whole text around
    # them, as over the whole text.
    for word in _NON_SPACE.finditer(text):
        if word.end() - word.start() > LONG_RUN or not _may_have_code(word.group()):
            continue
        for match in _CODE_TOKEN.finditer(text, word.start(), word.end()):
            start, value = match.start(), match.group().rstrip(_CODE_TRAILING)
            before = text[start - 1] if start else " "
            if before.isalnum() or before == "_" or len(value) < 2:
                continue
            if not _NUMBER_WORD.fullmatch(value):
                spans.append(Span(start, start + len(value), value))
    return spans


def find_amounts(text: str) -> list[Span]:
    """Numbers with a currency sign, a percent sign, a unit or ``#`` (``$25.50``, ``45€``,
    ``12.5%``, ``2.5 kg``, ``#4521``) and phone numbers (``+84 912 345 678``), left to right."""
    if not _AMOUNT_HINT.search(text):
        return []
    spans = []
    for match in _AMOUNT.finditer(text):
        value = match.group()
        if match.group("phone") and sum(c.isdigit() for c in value) < _PHONE_DIGITS:
            continue
        spans.append(Span(match.start(), match.end(), value))
    return spans


def _is_symbol(character: str) -> bool:
    """A symbol that reads the same in every language: an emoji, ``©``, ``™``, ``→``, ``★``,
    ``≤`` (Unicode categories So, Sm, Sk) or what joins and modifies an emoji (the variation
    selectors, the zero-width joiner, skin tones); ASCII symbols (``+``, ``<``, ``^``) are
    left to the model, which knows them."""
    if character.isascii():
        return False
    return unicodedata.category(character) in _SYMBOL_CATEGORIES or character in _EMOJI_GLUE


_SYMBOL_CATEGORIES = frozenset({"So", "Sm", "Sk"})
_EMOJI_GLUE = frozenset("\u200d\ufe0e\ufe0f\u20e3")  # joiner, text/emoji selectors, keycap


def find_symbols(text: str) -> list[Span]:
    """Runs of symbols (:func:`_is_symbol`: emoji, ``©``, ``→``) in ``text``, left to right.
    The vocabularies hold few of them: the model got their bytes as pieces and wrote a
    sentence around them (``I ❤️ you`` gave ``Tôi tay tay là những người ...``) or quotes in
    their place (``→`` gave ``“``)."""
    if text.isascii():
        return []
    spans: list[Span] = []
    start = -1
    for index, character in enumerate(text):
        if _is_symbol(character):
            if start < 0:
                start = index
        elif start >= 0:
            spans.append(Span(start, index, text[start:index]))
            start = -1
    if start >= 0:
        spans.append(Span(start, len(text), text[start:]))
    return spans


def find_specifiers(text: str) -> list[Span]:
    """Format specifiers, template fields, character entities and key combinations of
    ``text`` (``%s``, ``%1$s``, ``{name}``, ``{{user}}``, ``${var}``, ``:name``, ``&amp;``,
    ``Ctrl+S``), left to right."""
    if not _SPECIFIER_HINT.search(text):
        return []
    return [Span(m.start(), m.end(), m.group()) for m in _SPECIFIER.finditer(text)]


def find_markup(text: str) -> list[Span]:
    """Markup tags and comments of ``text`` (``<b>``, ``</a>``, ``<br/>``), left to right.

    After the last ``-->`` only tags are looked for: a ``<!--`` there has no end, and looking
    for one from every such ``<!--`` would cost time quadratic in their number. (A tag cannot
    reach past a ``>``, so none straddles that point.)
    """
    if "<" not in text:
        return []
    comments_end = text.rfind("-->") + len("-->") if "-->" in text else 0
    found = itertools.chain(
        _MARKUP.finditer(text, 0, comments_end), _TAG_ONLY.finditer(text, comments_end)
    )
    return [Span(m.start(), m.end(), m.group()) for m in found]


def overlaps_any(span: Span, spans: list[Span]) -> bool:
    """Whether ``span`` overlaps one of ``spans`` (sorted, apart): a binary search."""
    index = bisect.bisect_right(spans, span.start, key=lambda other: other.end)
    return index < len(spans) and spans[index].start < span.end


def copied_spans(text: str) -> list[Span]:
    """What training data and inference both copy: markup, specifiers (:func:`find_spans`
    too), left to right. Of two that overlap the longer is kept (:func:`longest_apart`), so a
    number inside a tag or a ``%1$s`` is part of it and a ``{query}`` inside a URL part of
    the URL."""
    return longest_apart(find_markup(text) + find_specifiers(text) + find_spans(text))


def longest_apart(candidates: list[Span]) -> list[Span]:
    """``candidates`` left to right, of two that overlap the longer kept. Each candidate is
    checked against the characters the kept ones cover: the check costs its own length, not
    the number of spans kept."""
    if len(candidates) < 2:  # most texts: nothing to choose between
        return candidates
    covered = bytearray(max(span.end for span in candidates))  # 1 where a kept span is
    kept: list[Span] = []
    for span in sorted(candidates, key=lambda span: span.start - span.end):  # longest first
        if covered.find(1, span.start, span.end) < 0:
            covered[span.start : span.end] = b"\x01" * (span.end - span.start)
            kept.append(span)
    return sorted(kept, key=lambda span: span.start)


def take_tokens(spans: list[Span], tokens: list[Span]) -> list[Span]:
    """``spans`` with each of ``tokens`` in place of the spans inside it, unless it overlaps
    one of them only in part (then it is left out). Both lists are sorted and apart, so one
    pass over them in step decides every token (tokens never overlap each other)."""
    taken: list[Span] = []
    position = 0  # spans before it are decided
    for token in tokens:
        while position < len(spans) and spans[position].end <= token.start:
            taken.append(spans[position])
            position += 1
        after = position
        while after < len(spans) and spans[after].start < token.end:
            after += 1
        overlapping = spans[position:after]
        if all(token.start <= span.start and span.end <= token.end for span in overlapping):
            taken.append(token)
            position = after
    return taken + spans[position:]


def spans_to_mask(
    text: str, known: Callable[[str], bool] | None, rendered: Sequence[Span] = ()
) -> list[Span]:
    """:func:`copied_spans`; at inference (``known`` given) amounts, phone numbers and
    measurements, and technical tokens; ``rendered`` (spans translated by rule: dates,
    places); at inference, symbols and emoji, and unknown names. A span that holds others
    takes their place (``March 5``, ``$25.50``, ``ABC-123``, ``TP.HCM``); one that overlaps a
    URL, an address or an earlier one in part is left out, and so is a symbol or a name that
    overlaps anything. Every step is a merge of sorted lists or a binary search: a text with
    thousands of spans costs no more per span than a short one."""
    spans = copied_spans(text)
    if known is not None:
        for tokens in (find_amounts(text), find_code_tokens(text)):
            spans = take_tokens(spans, tokens)
    if rendered:  # last: a place written like a file name (TP.HCM) is a place
        spans = take_tokens(spans, list(rendered))
    if known is None:
        return spans
    symbols = [symbol for symbol in find_symbols(text) if not overlaps_any(symbol, spans)]
    if symbols:
        spans = sorted(spans + symbols, key=lambda span: span.start)
    names = [name for name in find_names(text, known) if not overlaps_any(name, spans)]
    return sorted(spans + names, key=lambda span: span.start)


def _trim_url(url: str) -> str:
    """Drop sentence punctuation glued to a URL's end, keeping balanced closing brackets."""
    while url and url[-1] in _URL_TRAILING:
        if url[-1] == ")" and url.count("(") >= url.count(")"):
            break
        url = url[:-1]
    return url
