"""From a fetched package to raw messages: ``(catalog, English, Vietnamese)``.

Only the Vietnamese catalogs (``.../vi/LC_MESSAGES/DOMAIN.mo`` or ``.po``, also ``vi_VN``)
and LibreOffice's help pages are read. A package that ships a domain both as ``.po`` and as
``.mo`` is read from the ``.po`` (it keeps the fuzzy flags). A catalog is named
``SOURCE/DOMAIN`` (``git/git``), or ``SOURCE/APP/DOMAIN`` when the package has the domain in
several places (Django's ``django/admin/django``); a help catalog is a help module
(``libreoffice-help-vi/swriter``).

Entries that are fuzzy, obsolete or untranslated are counted, not returned; a plural entry
gives two messages, the singular and the plural with their translations.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from training.corpus.archive import read_members
from training.corpus.catalog import Entry, read_mo, read_po
from training.corpus.help_pages import align_pages, page_of

_VIETNAMESE_CATALOG = re.compile(r"(?:^|/)vi(?:_VN)?/LC_MESSAGES/[^/]+\.(?:mo|po)$")


@dataclass(frozen=True)
class Pair:
    """An English text and its Vietnamese translation, from one catalog: a message as
    extracted, or a training pair once cleaned."""

    catalog: str
    english: str
    vietnamese: str


@dataclass
class Extracted:
    """A source's messages, and how many entries were left out and why."""

    messages: list[Pair] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


def _app(path: str) -> str:
    """The folder that holds a catalog's ``locale`` (``django/contrib/admin`` -> ``admin``)."""
    parts = PurePosixPath(path).parts
    top = next(i for i, part in enumerate(parts) if re.fullmatch(r"vi(?:_VN)?", part))
    above = [part for part in parts[:top] if part not in ("locale", "locales", "conf")]
    return above[-1] if above else ""


def catalog_names(source: str, paths: list[str]) -> dict[str, str]:
    """Each catalog file's name (see the module docstring); of a ``.po``/``.mo`` twin only
    the ``.po`` is named."""
    chosen: dict[str, str] = {}
    for path in sorted(paths):  # ".mo" sorts before ".po": the .po replaces its twin
        chosen[path.rsplit(".", 1)[0]] = path
    stems = Counter(PurePosixPath(path).stem for path in chosen.values())
    names = {}
    for path in chosen.values():
        stem = PurePosixPath(path).stem
        names[path] = f"{source}/{stem}" if stems[stem] == 1 else f"{source}/{_app(path)}/{stem}"
    return names


def entry_messages(catalog: str, entry: Entry, skipped: Counter[str]) -> list[Pair]:
    """The messages of one entry, or none (counted in ``skipped``)."""
    if entry.obsolete:
        skipped["obsolete"] += 1
        return []
    if entry.fuzzy:
        skipped["fuzzy"] += 1
        return []
    if not all(entry.translations):
        skipped["not_translated"] += 1
        return []
    messages = [Pair(catalog, entry.msgid, entry.translations[0])]
    if entry.msgid_plural:
        messages.append(Pair(catalog, entry.msgid_plural, entry.translations[-1]))
    return messages


def catalog_messages(source: str, package: Path, skip: tuple[str, ...] = ()) -> Extracted:
    """The messages of every Vietnamese catalog in ``package`` but those named in ``skip``."""
    members = read_members(package, lambda path: bool(_VIETNAMESE_CATALOG.search(path)))
    extracted = Extracted()
    for path, catalog in sorted(catalog_names(source, list(members)).items()):
        if PurePosixPath(path).stem in skip:
            continue
        data = members[path]
        entries = read_po(data) if path.endswith(".po") else read_mo(data)
        for entry in entries:
            extracted.messages += entry_messages(catalog, entry, extracted.skipped)
    return extracted


def _pages(package: Path, language: str) -> dict[str, tuple[str, str]]:
    """``page path -> (module, html)`` of one language's help pages in ``package``."""
    wanted = f"/help/{language}/text/"
    members = read_members(package, lambda path: wanted in f"/{path}" and path.endswith(".html"))
    pages = {}
    for path, data in members.items():
        found = page_of(path)
        if found is not None:
            pages[found[1].page] = (found[1].module, data.decode("utf-8", errors="replace"))
    return pages


def help_messages(
    source: str, package: Path, language: str, english_package: Path
) -> Iterator[Pair]:
    """Aligned help paragraphs of ``package`` (``language``) and ``english_package``
    (``en-US``), page by page in path order."""
    translated = _pages(package, language)
    english = _pages(english_package, "en-US")
    for page in sorted(english.keys() & translated.keys()):
        module, english_html = english[page]
        for english_text, translation in align_pages(english_html, translated[page][1]):
            yield Pair(f"{source}/{module}", english_text, translation)
