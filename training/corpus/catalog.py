"""Gettext catalogs: compiled ``.mo`` files and ``.po`` sources, read into entries.

Python's ``gettext`` module reads ``.mo`` files only to look strings up, and has no ``.po``
reader; a corpus needs every entry with its flags, in file order. Both readers here give the
same :class:`Entry` list:

* a message context (``msgctxt``; in a ``.mo`` key, ``context\\x04msgid``);
* plural forms (``msgid_plural`` and ``msgstr[n]``; in a ``.mo``, NUL-separated);
* the ``fuzzy`` flag (``#, fuzzy``: a guess the translator has not confirmed) and obsolete
  entries (``#~``: no longer used by the program), which ``msgfmt`` leaves out of a ``.mo``;
* C escapes (``\\n``, ``\\t``, ``\\"``, ``\\\\``, octal and hex) and the header's charset.

The header entry (empty ``msgid``) is not an entry.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

_MO_MAGIC = 0x950412DE
_CONTEXT_SEPARATOR = "\x04"
_CHARSET = re.compile(rb"charset=([\w.-]+)", re.IGNORECASE)


class CatalogError(ValueError):
    """A catalog file that cannot be read."""


@dataclass(frozen=True)
class Entry:
    """One message: the English ``msgid`` (and ``msgid_plural``) and its translations, one per
    plural form (a single one for a message without plural)."""

    msgid: str
    translations: tuple[str, ...]
    msgid_plural: str = ""
    context: str = ""
    fuzzy: bool = False
    obsolete: bool = False

    @property
    def translated(self) -> bool:
        return any(self.translations)


def _charset(header: bytes) -> str:
    found = _CHARSET.search(header)
    name = found.group(1).decode("ascii") if found else "utf-8"
    return "utf-8" if name.upper() == "CHARSET" else name  # the template's placeholder


def read_mo(data: bytes) -> list[Entry]:
    """The entries of a compiled catalog, in the file's (sorted) order."""
    if len(data) < 20:
        raise CatalogError("not a .mo file: too short")
    for order in ("<", ">"):
        if struct.unpack(f"{order}I", data[:4])[0] == _MO_MAGIC:
            break
    else:
        raise CatalogError("not a .mo file: bad magic number")
    _, count, originals_at, translations_at = struct.unpack(f"{order}4I", data[4:20])

    def string(table: int, index: int) -> bytes:
        length, offset = struct.unpack(
            f"{order}2I", data[table + 8 * index : table + 8 * index + 8]
        )
        if offset + length > len(data):
            raise CatalogError("not a .mo file: string outside the file")
        return data[offset : offset + length]

    raw = [(string(originals_at, i), string(translations_at, i)) for i in range(count)]
    header = next((message for key, message in raw if key == b""), b"")
    charset = _charset(header)
    entries = []
    for key_bytes, message_bytes in raw:
        if not key_bytes:
            continue
        key, message = key_bytes.decode(charset), message_bytes.decode(charset)
        context, _, ids = key.rpartition(_CONTEXT_SEPARATOR)
        msgid, _, plural = ids.partition("\x00")
        entries.append(Entry(msgid, tuple(message.split("\x00")), plural, context))
    return entries


_ESCAPE = re.compile(r"\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))", re.DOTALL)
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


def unescape(quoted: str) -> str:
    """The value of a C string literal's body (without its quotes)."""

    def replace(match: re.Match[str]) -> str:
        octal, hexadecimal, char = match.groups()
        if octal:
            return chr(int(octal, 8))
        if hexadecimal:
            return chr(int(hexadecimal, 16))
        return _SIMPLE_ESCAPES.get(char, char)  # \" \\ \' and unknown ones: the character

    return _ESCAPE.sub(replace, quoted)


# A keyword line: keyword (msgstr[n] with its index), then the first quoted piece.
_KEYWORD = re.compile(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s*"(.*)"\s*$')
_CONTINUATION = re.compile(r'^"(.*)"\s*$')


@dataclass
class _Draft:
    """An entry being read from a ``.po`` file."""

    fuzzy: bool = False
    obsolete: bool = False
    context: str | None = None
    msgid: str | None = None
    msgid_plural: str = ""
    translations: dict[int, str] | None = None
    field: tuple[str, int] = ("", 0)

    def entry(self) -> Entry | None:
        if self.msgid is None:
            return None
        forms = self.translations or {}
        translations = tuple(forms.get(n, "") for n in range(max(forms, default=0) + 1))
        return Entry(
            self.msgid,
            translations,
            self.msgid_plural,
            self.context or "",
            self.fuzzy,
            self.obsolete,
        )

    def append(self, text: str) -> None:
        name, index = self.field
        if name == "msgctxt":
            self.context = (self.context or "") + text
        elif name == "msgid":
            self.msgid = (self.msgid or "") + text
        elif name == "msgid_plural":
            self.msgid_plural += text
        elif name == "msgstr":
            assert self.translations is not None
            self.translations[index] = self.translations.get(index, "") + text


def _decode_po(data: bytes) -> str:
    """The text of a ``.po`` file, in the charset its header names."""
    header_end = data.find(b"\n\n")
    header = data[: header_end if header_end > 0 else 4096]
    try:
        return data.decode(_charset(header)).lstrip("\ufeff")
    except (LookupError, UnicodeDecodeError) as exc:
        raise CatalogError(f"cannot decode the .po file ({exc})") from exc


def read_po(data: bytes) -> list[Entry]:
    """The entries of a ``.po`` file in file order, fuzzy and obsolete ones flagged."""
    entries: list[Entry] = []
    draft = _Draft()

    def finish() -> None:
        nonlocal draft
        entry = draft.entry()
        if entry is not None and (entry.msgid or entry.context):
            entries.append(entry)
        draft = _Draft()

    for number, raw_line in enumerate(_decode_po(data).splitlines(), start=1):
        line = raw_line.strip()
        obsolete = line.startswith("#~")
        if obsolete:
            line = line[2:].strip()
            if line.startswith("|"):  # "#~|": an obsolete entry's previous msgid
                continue
        elif line.startswith("#"):
            if line.startswith("#,") and draft.msgid is not None:
                finish()  # flags start a new entry
            if line.startswith("#,") and "fuzzy" in (f.strip() for f in line[2:].split(",")):
                draft.fuzzy = True
            continue
        if not line:
            continue
        keyword = _KEYWORD.match(line)
        if keyword:
            name, index, text = keyword.groups()
            base = "msgstr" if name.startswith("msgstr") else name
            if base in ("msgctxt", "msgid") and draft.translations is not None:
                finish()  # a new entry begins
            draft.obsolete = draft.obsolete or obsolete
            if base == "msgstr" and draft.translations is None:
                draft.translations = {}
            draft.field = (base, int(index or 0))
            draft.append(unescape(text))
            continue
        continuation = _CONTINUATION.match(line)
        if continuation is None:
            raise CatalogError(f"line {number}: cannot parse {raw_line!r}")
        draft.append(unescape(continuation.group(1)))
    finish()
    return entries
