"""Reading catalogs and help pages: .mo and .po files, package archives, aligned help."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.corpus_packages import mo_bytes, write_deb, write_wheel
from training.corpus.archive import ArchiveError, read_members
from training.corpus.catalog import CatalogError, Entry, read_mo, read_po, unescape
from training.corpus.extract import catalog_messages, catalog_names, entry_messages
from training.corpus.help_pages import align_pages, paragraphs

PO = r"""# Vietnamese translation.
msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\n"
"Plural-Forms: nplurals=1; plural=0;\n"

#: src/main.c:10
msgid "Open"
msgstr "Mở"

msgctxt "menu"
msgid "File"
msgstr "Tập tin"

#, fuzzy, c-format
msgid "Delete %s?"
msgstr "Xoá %s không?"

#, c-format
msgid "%d file"
msgid_plural "%d files"
msgstr[0] "%d tập tin"

msgid ""
"Line one\n"
"with a \"quote\" and a tab\t."
msgstr ""
"Dòng một\n"
"có \"ngoặc\" và tab\t."

msgid "Untranslated"
msgstr ""

#~ msgid "Old message"
#~ msgstr "Thông điệp cũ"
"""


def test_po_entries_keep_context_plurals_flags_and_escapes() -> None:
    entries = read_po(PO.encode())
    assert entries[0] == Entry("Open", ("Mở",))
    assert entries[1] == Entry("File", ("Tập tin",), context="menu")
    assert entries[2].fuzzy and entries[2].msgid == "Delete %s?"
    assert entries[3] == Entry("%d file", ("%d tập tin",), msgid_plural="%d files")
    assert entries[4].msgid == 'Line one\nwith a "quote" and a tab\t.'
    assert entries[4].translations == ('Dòng một\ncó "ngoặc" và tab\t.',)
    assert not entries[5].translated
    assert entries[6] == Entry("Old message", ("Thông điệp cũ",), obsolete=True)
    assert len(entries) == 7


def test_po_in_a_legacy_charset_and_broken_lines() -> None:
    header = 'msgid ""\nmsgstr "Content-Type: text/plain; charset=ISO-8859-1\\n"\n\n'
    text = header + 'msgid "Caf"\nmsgstr "Café"\n'
    assert read_po(text.encode("latin-1"))[0].translations == ("Café",)
    with pytest.raises(CatalogError, match="line 2"):
        read_po(b'msgid "a"\nnonsense\n')


def test_unescape_octal_and_hex() -> None:
    assert unescape(r"a\101\x42\\n\q") == "aAB\\nq"


def test_mo_entries_split_context_and_plurals() -> None:
    data = mo_bytes({"Open": "Mở", "menu\x04File": "Tập tin", "%d file\x00%d files": "%d tập tin"})
    entries = {entry.msgid: entry for entry in read_mo(data)}
    assert entries["File"].context == "menu"
    assert entries["%d file"] == Entry("%d file", ("%d tập tin",), msgid_plural="%d files")
    assert entries["Open"].translations == ("Mở",)
    assert "" not in entries  # the header
    with pytest.raises(CatalogError):
        read_mo(b"not a catalog at all")


def test_plural_entries_give_both_forms_and_flags_are_counted() -> None:
    skipped: Counter[str] = Counter()
    plural = Entry("%d file", ("%d tập tin",), msgid_plural="%d files")
    assert [m.english for m in entry_messages("c", plural, skipped)] == ["%d file", "%d files"]
    assert entry_messages("c", Entry("a", ("b",), fuzzy=True), skipped) == []
    assert entry_messages("c", Entry("a", ("b",), obsolete=True), skipped) == []
    assert entry_messages("c", Entry("a", ("",)), skipped) == []
    assert skipped == {"fuzzy": 1, "obsolete": 1, "not_translated": 1}


def test_debs_and_wheels_give_only_the_wanted_members(tmp_path: Path) -> None:
    files = {"usr/share/locale/vi/LC_MESSAGES/x.mo": b"mo", "usr/bin/x": b"binary"}
    deb = write_deb(tmp_path / "x_1.0_all.deb", files)
    assert read_members(deb, lambda path: path.endswith(".mo")) == {
        "usr/share/locale/vi/LC_MESSAGES/x.mo": b"mo"
    }
    wheel = write_wheel(tmp_path / "x-1.0-py3-none-any.whl", files)
    assert set(read_members(wheel, lambda path: "bin" in path)) == {"usr/bin/x"}
    broken = tmp_path / "y_1.0_all.deb"
    broken.write_bytes(b"garbage")
    with pytest.raises(ArchiveError):
        read_members(broken, lambda path: True)


def test_catalog_names_prefer_po_and_tell_twins_apart(tmp_path: Path) -> None:
    paths = [
        "django/conf/locale/vi/LC_MESSAGES/django.mo",
        "django/conf/locale/vi/LC_MESSAGES/django.po",
        "django/contrib/admin/locale/vi/LC_MESSAGES/django.po",
        "django/contrib/admin/locale/vi/LC_MESSAGES/djangojs.po",
    ]
    assert catalog_names("django", paths) == {
        "django/conf/locale/vi/LC_MESSAGES/django.po": "django/django/django",
        "django/contrib/admin/locale/vi/LC_MESSAGES/django.po": "django/admin/django",
        "django/contrib/admin/locale/vi/LC_MESSAGES/djangojs.po": "django/djangojs",
    }
    wheel = write_wheel(
        tmp_path / "web-1.0-py3-none-any.whl",
        {
            "web/locale/vi/LC_MESSAGES/web.po": PO.encode(),
            "web/locale/fr/LC_MESSAGES/web.po": PO.encode(),
            "web/locale/vi_VN/LC_MESSAGES/skipme.mo": mo_bytes({"A": "Á"}),
        },
    )
    extracted = catalog_messages("web", wheel, skip=("skipme",))
    assert {m.catalog for m in extracted.messages} == {"web/web"}
    assert [m.english for m in extracted.messages][:2] == ["Open", "File"]
    assert extracted.skipped == {"fuzzy": 1, "obsolete": 1, "not_translated": 1}


def page(lang: str, body: str) -> str:
    return f'<html lang="{lang}"><body><div id="DisplayArea">{body}</div></body></html>'


def test_help_paragraphs_align_by_id_and_occurrence() -> None:
    english = page(
        "en-US",
        '<h1 id="hd_id1">Opening <a name="x"></a>Documents</h1>'
        '<p id="par_id2" class="paragraph">Choose <span class="menuitem">File - Open</span>.</p>'
        '<p id="par_id3">Repeated</p><p id="par_id3">Twice</p><p id="par_id4">Only here</p>'
        '<p class="noid">No id</p>',
    )
    vietnamese = page(
        "vi",
        '<h1 id="hd_id1">Mở tài liệu</h1>'
        '<p id="par_id2">Chọn <span class="menuitem">Tập tin - Mở</span>.</p>'
        '<p id="par_id3">Lặp lại</p><p id="par_id3">Hai lần</p>',
    )
    assert paragraphs(english)[0] == ("hd_id1", "Opening Documents")
    assert list(align_pages(english, vietnamese)) == [
        ("Opening Documents", "Mở tài liệu"),
        ("Choose File - Open.", "Chọn Tập tin - Mở."),
        ("Repeated", "Lặp lại"),
        ("Twice", "Hai lần"),
    ]
