"""Cleaning catalog messages into pairs, and removing duplicates across held-out splits."""

from __future__ import annotations

import pytest

from model.text.protect import protect_pair
from training.corpus.cleaning import clean_pair, is_mostly_code, strip_accelerators
from training.corpus.extract import Pair
from training.corpus.splits import make_splits, near_key


@pytest.mark.parametrize(
    ("english", "vietnamese", "expected"),
    [
        ("_File", "_Tập tin", ("File", "Tập tin")),
        ("Re_load", "Tải lại (_L)", ("Reload", "Tải lại")),
        ("&Open", "&Mở", ("Open", "Mở")),
        ("Save &&Close", "Lưu &&Đóng", ("Save &Close", "Lưu &Đóng")),
        ("~Save", "~Lưu", ("Save", "Lưu")),
        (
            "Set the user_id value",
            "Đặt giá trị user_id",
            ("Set the user_id value", "Đặt giá trị user_id"),
        ),
        ("Tom &amp; Jerry", "Tom &amp; Jerry", ("Tom &amp; Jerry", "Tom &amp; Jerry")),
        ("Set LC_ALL=C", "Đặt “LC_ALL=C”", ("Set LC_ALL=C", "Đặt “LC_ALL=C”")),
    ],
)
def test_accelerator_marks_are_removed(
    english: str, vietnamese: str, expected: tuple[str, str]
) -> None:
    assert strip_accelerators(english, vietnamese) == expected


@pytest.mark.parametrize(
    ("english", "vietnamese", "reason"),
    [
        ("Open", "Open", "untranslated"),
        ("Open file", "Open tap tin", "untranslated"),  # no Vietnamese letter
        ("translator-credits", "Nguyễn Văn A", "credits"),
        ("Copy %s to %s", "Chép vào %s", "specifiers"),
        ("Hello {name}", "Xin chào", "specifiers"),
        ("<b>Bold</b> text", "Chữ đậm", "specifiers"),
        ("org.gnome.desktop", "tổ chức", "mostly_code"),
        ("%s: %s (%d)", "%s: %s (%d) đã", "mostly_code"),
        ("Word " * 100, "Chữ " * 100, "too_long"),
        (
            "A short thing to say",
            "Một thứ ngắn để nói nhưng được dịch dài dòng " * 3,
            "length_ratio",
        ),
    ],
)
def test_filters_say_why_a_message_is_dropped(english: str, vietnamese: str, reason: str) -> None:
    assert clean_pair(english, vietnamese).dropped == reason


def test_specifiers_tags_and_keys_are_kept_for_the_placeholders() -> None:
    english = "Press Ctrl+S to save <b>%1$s</b> as {name} for :user (%(count)d)."
    vietnamese = "Nhấn Ctrl+S để lưu <b>%1$s</b> thành {name} cho :user (%(count)d)."
    assert clean_pair(english, vietnamese).pairs == ((english, vietnamese),)
    masked, target = protect_pair(english, vietnamese)
    assert masked.originals == ("Ctrl+S", "<b>", "%1$s", "</b>", "{name}", ":user", "%(count)d")
    assert masked.text == "Press \ue001 to save \ue002\ue003\ue004 as \ue005 for \ue006 (\ue007)."
    assert target == "Nhấn \ue001 để lưu \ue002\ue003\ue004 thành \ue005 cho \ue006 (\ue007)."


def test_multi_line_entries_pair_by_line_or_stay_whole() -> None:
    options = (
        "  -a, --all        do not ignore entries\n"
        "                     starting with .\n"
        "  -A, --almost-all   do not list . and ..\n",
        "  -a, --all        không bỏ qua mục nhập bắt đầu bằng .\n"
        "  -A, --almost-all   không liệt kê . và ..\n",
    )
    assert clean_pair(*options).pairs == (
        ("do not ignore entries starting with .", "không bỏ qua mục nhập bắt đầu bằng ."),
        ("do not list . and ..", "không liệt kê . và .."),
    )
    uneven = ("One line only, wrapped\nhere.", "Một dòng duy nhất.\nThêm một dòng.\nVà nữa.")
    assert clean_pair(*uneven).pairs == (
        ("One line only, wrapped here.", "Một dòng duy nhất. Thêm một dòng. Và nữa."),
    )


def test_paragraphs_split_where_both_sides_split_alike() -> None:
    both = ("Click Save. The file is saved.", "Nhấn Lưu. Tập tin được lưu.")
    assert clean_pair(*both).pairs == (
        ("Click Save.", "Nhấn Lưu."),
        ("The file is saved.", "Tập tin được lưu."),
    )
    differ = ("Click Save. The file is saved.", "Nhấn Lưu để lưu tập tin.")
    assert clean_pair(*differ).pairs == (differ,)
    spaced = ("Example:", "Thí dụ :")
    assert clean_pair(*spaced).pairs == (("Example:", "Thí dụ:"),)


def test_mostly_code() -> None:
    assert is_mostly_code("gtk-ok") and is_mostly_code("show_hidden") and is_mostly_code("%s: %s")
    assert not is_mostly_code("Show hidden files") and not is_mostly_code("Copy %s to %s")


def test_near_duplicates_and_held_out_catalogs() -> None:
    assert near_key("Open File...") == near_key("open file") == "openfile"
    assert near_key("Page 12 of 30") == near_key("Page 3 of 4")
    pairs = [
        Pair("a/a", "Open File...", "Mở tập tin…"),
        Pair("a/a", "open file", "mở tập tin"),
        Pair("a/a", "Open File...", "Mở tập tin…"),
        Pair("a/a", "Open File...", "Mở tệp…"),  # another translation: kept
        Pair("d/d", "Open file", "Mở tệp"),  # dev, but seen in training
        Pair("d/d", "Close", "Đóng"),
        Pair("t/t", "Close", "Đóng lại"),  # test, but seen in dev
        Pair("t/t", "Quit", "Thoát"),
    ]
    sets = make_splits(pairs, dev=["d/d"], test=["t/t"])
    assert [p.vietnamese for p in sets.pairs["train"]] == ["Mở tập tin…", "Mở tệp…"]
    assert [p.english for p in sets.pairs["dev"]] == ["Close"]
    assert [p.english for p in sets.pairs["test"]] == ["Quit"]
    assert sets.removed == {
        "train_near_duplicate": 1,
        "train_duplicate": 1,
        "dev_seen_in_train": 1,
        "test_seen_in_dev": 1,
    }
