"""A small rule-based sentence splitter for English or Vietnamese input, and its inverse join.

The model translates one sentence at a time, so multi-sentence input is split first.

Segments. :func:`split_sentences` returns the sentences of a text in order, with its *layout*
kept as segments of their own: every run of line breaks (``"\\n"``, ``"\\n\\n"``, ...), and a
line's indentation and list marker (``"- "``, ``"  * "``, ``"• "``, ``"1. "``, ``"a) "``,
``"    "``). Line breaks always split; layout segments pass through translation unchanged
(:func:`is_line_break` says which segments they are), so :func:`join_sentences` puts the text's
lines, bullets and indentation back, one output line per input line. Within a line, sentences
are joined with one space, and a translation that does not end as a sentence is closed with its
source's final punctuation first (:func:`closed_sentences`): every sentence that another one
follows on its line ended that way, and without it two translations would run together.

A sentence ends at ``.``, ``!``, ``?`` or ``…`` (possibly repeated, possibly followed by closing
quotes or brackets) when whitespace follows and the next character is an uppercase letter, an
opening quote or bracket, or a digit. Not after:

* known abbreviations of the text's language (English ``Mr.``, ``Dr.``, ``vs.``, ``No.``;
  Vietnamese ``TP.``, ``TS.``, ``PGS.``, ``tr.``, ...), compared case-insensitively;
* initials and dotted abbreviations: ``J. K. Rowling``, ``U.S. Army``, ``e.g.``, ``p.m.``;
* decimals and other dots with no space after them (``3.5``, ``example.com``) never qualify.
"""

from __future__ import annotations

import re

# Lower-case, without the final dot. Titles, and abbreviations that are normally followed by a
# capitalised name or a number.
ABBREVIATIONS = frozenset(
    """
    mr mrs ms messrs dr prof sr jr st mt ft gen col lt sgt capt cmdr adm gov sen rep rev hon
    pres supt insp vs no nos fig figs vol vols pp ch sec art approx dept est
    jan feb aug sept oct nov dec
    """.split()
)
# Vietnamese: titles and degrees (TS. tiến sĩ, ThS. thạc sĩ, PGS./GS. professors, BS. bác sĩ,
# KS. kỹ sư, CN. cử nhân), places (TP. thành phố, TT. thị trấn), tr. (trang, page), NXB.
# (publisher), Cty. (company), and the foreign titles Vietnamese text uses (Mr., Dr., vs.).
# English words such as "no" stay out: Vietnamese "no." (full) ends sentences.
VIETNAMESE_ABBREVIATIONS = frozenset(
    "tp tt ts ths pgs gs bs ks cn tr nxb cty mr mrs ms dr vs".split()
)
_ABBREVIATIONS = {"en": ABBREVIATIONS, "vi": VIETNAMESE_ABBREVIATIONS}

_LINE_BREAKS = re.compile(r"(?:\r\n|\r|\n)+")
# List markers at the start of a line: bullets, "1." / "1)" / "(1)", "a." / "a)" / "(a)", "A)".
# "A." is left out: at a line start it is far more often an initial ("A. Smith") than an item.
_MARKER = r"(?:[-*•‣◦▪·–—+]|\(?\d{1,3}[.)]|\([a-zA-Z]\)|[a-z][.)]|[A-Z]\))"
_INDENT = r"[ \t\u00a0\u3000]"
# A line's layout: indentation, then optionally a marker and the space after it.
_LINE_PREFIX = re.compile(rf"{_INDENT}*(?:{_MARKER}{_INDENT}+)?")
# A layout segment: line breaks, or a line prefix (the marker's trailing space optional, so a
# stripped "1." or "-" that reaches the translator on its own is still recognised).
_LAYOUT = re.compile(rf"(?:\r\n|\r|\n)+|{_INDENT}*{_MARKER}{_INDENT}*|{_INDENT}+")
# Sentence-final punctuation, closing quotes/brackets, then the whitespace we split at. Only
# from the start of a run of punctuation: a run that fails there fails from every later
# character too, and trying each would cost time quadratic in the run's length ("!!!!...").
_BOUNDARY = re.compile(r"(?<![.!?…])[.!?…]+[\"'”’»)\]]*\s+")
_OPENERS = frozenset("\"'“‘«([¿¡")
# A single letter with a dot (an initial), or dotted letters: "J.", "U.S.", "e.g.", "p.m."
_DOTTED = re.compile(r"(?:[^\W\d_]\.)+$")
# A sentence's end: its final punctuation, then closing quotes or brackets.
_SENTENCE_END = re.compile(r"([.!?…]+)[\"'”’»)\]]*$")
# What a translation may end with that does not end a sentence: a comma, a dash, ...
_OPEN_ENDING = ",;:–—- "


def is_line_break(segment: str) -> bool:
    """Whether a segment from :func:`split_sentences` is layout (a run of line breaks, or a
    line's indentation and list marker): it passes through translation unchanged."""
    return bool(segment) and _LAYOUT.fullmatch(segment) is not None


is_layout = is_line_break


def _line_segments(line: str, abbreviations: frozenset[str]) -> list[str]:
    """One line's segments: its layout prefix (if any, and if text follows), then sentences."""
    prefix = _LINE_PREFIX.match(line)
    cut = prefix.end() if prefix else 0
    if 0 < cut < len(line) and line[cut:].strip():
        return [line[:cut], *_split_line(line[cut:], abbreviations)]
    return _split_line(line, abbreviations)


def _last_word(line: str, start: int, end: int) -> str:
    """The last whitespace-free run of ``line[start:end]``, found from its end (the stretch
    since the last split can be long: slicing it at every candidate boundary would cost time
    quadratic in its length)."""
    first = end
    while first > start and not line[first - 1].isspace():
        first -= 1
    return line[first:end]


def _ends_with_abbreviation(last_word: str, abbreviations: frozenset[str]) -> bool:
    """A sentence's last word (``Mr.``, ``U.S.``, ``J.``) ends with a ``.`` that belongs to
    an abbreviation or initial, not a sentence."""
    last_word = last_word.lstrip("\"'“‘«([")
    if _DOTTED.match(last_word):
        return True
    return last_word.endswith(".") and last_word[:-1].lower() in abbreviations


def _split_line(line: str, abbreviations: frozenset[str]) -> list[str]:
    """Sentences of one line (no line breaks in ``line``), stripped, empty ones dropped."""
    sentences = []
    start = 0
    for boundary in _BOUNDARY.finditer(line):
        end = boundary.end()
        if end >= len(line):
            break
        following = line[end]
        if not (following.isupper() or following.isdigit() or following in _OPENERS):
            continue
        punctuation = boundary.group().rstrip()
        stop = boundary.start() + len(punctuation)
        last_word = _last_word(line, start, stop)
        if punctuation == "." and _ends_with_abbreviation(last_word, abbreviations):
            continue
        sentences.append(line[start:stop].strip())
        start = end
    sentences.append(line[start:].strip())
    return [sentence for sentence in sentences if sentence]


def split_sentences(text: str, lang: str = "en") -> list[str]:
    """Sentences and layout segments of ``text`` (written in ``lang``, an ISO 639-1 code whose
    abbreviations do not end a sentence; English ones for a language without a list), in
    order; ``""`` gives ``[]``.

    ``"Hi there. How are you?\\n- Fine."`` ->
    ``["Hi there.", "How are you?", "\\n", "- ", "Fine."]``. Whitespace between sentences and
    at line ends is not kept; a line's leading indentation is. The caller NFC-normalises.
    """
    abbreviations = _ABBREVIATIONS.get(lang, ABBREVIATIONS)
    segments: list[str] = []
    position = 0
    for line_break in _LINE_BREAKS.finditer(text):
        segments.extend(_line_segments(text[position : line_break.start()], abbreviations))
        segments.append(line_break.group())
        position = line_break.end()
    segments.extend(_line_segments(text[position:], abbreviations))
    return segments


def close_sentence(translation: str, source: str = "") -> str:
    """``translation`` ending as a sentence: as it is when it ends with ``.``, ``!``, ``?`` or
    ``…`` (before closing quotes or brackets), else with a trailing comma, colon or dash
    replaced by the final punctuation of ``source`` (``.`` when it has none)."""
    text = translation.rstrip()
    if not text or _SENTENCE_END.search(text):
        return translation
    found = _SENTENCE_END.search(source.rstrip())
    return text.rstrip(_OPEN_ENDING) + (found.group(1) if found else ".")


def closed_sentences(sentences: list[str], sources: list[str] | None = None) -> list[str]:
    """Translated segments with every sentence that another one follows on its line closed
    (:func:`close_sentence`, with the punctuation of ``sources``, the segments translated)."""
    closed = list(sentences)
    previous: int | None = None  # the last sentence on the current line
    for index, segment in enumerate(sentences):
        if is_line_break(segment):
            previous = None
            continue
        if not segment:
            continue
        if previous is not None:
            source = sources[previous] if sources is not None else ""
            closed[previous] = close_sentence(closed[previous], source)
        previous = index
    return closed


def join_sentences(sentences: list[str], sources: list[str] | None = None) -> str:
    """Inverse of :func:`split_sentences` for translated segments: sentences on one line are
    closed (:func:`closed_sentences`) and joined with a space, layout segments (line breaks,
    indentation, markers) kept as they are. ``sources``: the segments that were translated."""
    parts: list[str] = []
    previous_was_sentence = False
    for segment in closed_sentences(sentences, sources):
        if is_line_break(segment):
            parts.append(segment)
            previous_was_sentence = False
            continue
        if not segment:
            continue
        if previous_was_sentence:
            parts.append(" ")
        parts.append(segment)
        previous_was_sentence = True
    return "".join(parts)
