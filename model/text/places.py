"""Vietnam's cities, provinces and best-known places, written the way the target language
writes them.

Neither model learned them from TED talks: the Vietnamese→English model turned ``Hà Nội``
into ``the Netherlands``, ``Thành phố Hồ Chí Minh`` into ``the city of the Claque`` and ``Hội
An và Hạ Long`` into ``the U.S.``, and the English→Vietnamese one copied ``Hanoi`` and ``Da
Nang`` as foreign names or garbled them (``Saigon`` gave ``Sigon``, ``Da Lat`` gave ``Dòng
Lat``). A place has one name in each language, so it is found in the source and carried
across as a protected span (:mod:`model.text.protect`) whose placeholder comes back as the
other language's name.

English names are matched as they are written (``Hanoi``, ``Ha Noi``, ``Da Nang``,
``Danang``, ``Ho Chi Minh City``, ``HCMC``); Vietnamese ones with every syllable capitalised,
as a name is written (``Hòa Bình`` is a province, ``hòa bình`` is peace), with or without
their marks (``Ha Noi``, ``Da Nang``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from model.text.diacritics import strip_diacritics
from model.text.spans import Span

# (English names, the first the one written; Vietnamese names, likewise)
PLACES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("Vietnam", "Viet Nam"), ("Việt Nam",)),
    (("Hanoi", "Ha Noi"), ("Hà Nội",)),
    (
        ("Ho Chi Minh City", "HCMC", "HCM City"),
        (
            "Thành phố Hồ Chí Minh",
            "thành phố Hồ Chí Minh",
            "TP. Hồ Chí Minh",
            "TP Hồ Chí Minh",
            "TP.HCM",
            "TP. HCM",
            "TPHCM",
        ),
    ),
    (("Ho Chi Minh",), ("Hồ Chí Minh",)),
    (("Saigon", "Sai Gon"), ("Sài Gòn",)),
    (("Da Nang", "Danang"), ("Đà Nẵng",)),
    (("Hue",), ("Huế",)),
    (("Hai Phong", "Haiphong"), ("Hải Phòng",)),
    (("Can Tho",), ("Cần Thơ",)),
    (("Nha Trang",), ("Nha Trang",)),
    (("Da Lat", "Dalat"), ("Đà Lạt",)),
    (("Hoi An",), ("Hội An",)),
    (("Ha Long Bay", "Halong Bay"), ("Vịnh Hạ Long", "vịnh Hạ Long")),
    (("Ha Long", "Halong"), ("Hạ Long",)),
    (("Vung Tau",), ("Vũng Tàu",)),
    (("Phu Quoc",), ("Phú Quốc",)),
    (("Sa Pa", "Sapa"), ("Sa Pa",)),
    (("Mekong Delta",), ("Đồng bằng sông Cửu Long", "đồng bằng sông Cửu Long")),
    (("Mekong",), ("Mê Kông", "Mekong")),
    (("Red River",), ("sông Hồng", "Sông Hồng")),
    (("Quy Nhon",), ("Quy Nhơn",)),
    (("Phan Thiet",), ("Phan Thiết",)),
    (("Mui Ne",), ("Mũi Né",)),
    (("Ninh Binh",), ("Ninh Bình",)),
    (("Bien Hoa",), ("Biên Hòa",)),
    (("Buon Ma Thuot",), ("Buôn Ma Thuột",)),
    (("Thua Thien Hue",), ("Thừa Thiên Huế",)),
    (("Ha Giang",), ("Hà Giang",)),
    (("Lao Cai",), ("Lào Cai",)),
    (("Cao Bang",), ("Cao Bằng",)),
    (("Quang Ninh",), ("Quảng Ninh",)),
    (("Bac Ninh",), ("Bắc Ninh",)),
    (("Nam Dinh",), ("Nam Định",)),
    (("Thanh Hoa",), ("Thanh Hóa", "Thanh Hoá")),
    (("Nghe An",), ("Nghệ An",)),
    (("Ha Tinh",), ("Hà Tĩnh",)),
    (("Quang Binh",), ("Quảng Bình",)),
    (("Quang Tri",), ("Quảng Trị",)),
    (("Quang Nam",), ("Quảng Nam",)),
    (("Quang Ngai",), ("Quảng Ngãi",)),
    (("Binh Dinh",), ("Bình Định",)),
    (("Khanh Hoa",), ("Khánh Hòa", "Khánh Hoà")),
    (("Lam Dong",), ("Lâm Đồng",)),
    (("Dong Nai",), ("Đồng Nai",)),
    (("Binh Duong",), ("Bình Dương",)),
    (("Tien Giang",), ("Tiền Giang",)),
    (("Ben Tre",), ("Bến Tre",)),
    (("An Giang",), ("An Giang",)),
    (("Kien Giang",), ("Kiên Giang",)),
    (("Ca Mau",), ("Cà Mau",)),
    (("Soc Trang",), ("Sóc Trăng",)),
    (("Bac Lieu",), ("Bạc Liêu",)),
    (("Dong Thap",), ("Đồng Tháp",)),
    (("Vinh Long",), ("Vĩnh Long",)),
    (("Tay Ninh",), ("Tây Ninh",)),
    (("Thai Nguyen",), ("Thái Nguyên",)),
    (("Hai Duong",), ("Hải Dương",)),
    (("Hung Yen",), ("Hưng Yên",)),
    (("Thai Binh",), ("Thái Bình",)),
    (("Phu Tho",), ("Phú Thọ",)),
    (("Yen Bai",), ("Yên Bái",)),
    (("Son La",), ("Sơn La",)),
    (("Dien Bien Phu",), ("Điện Biên Phủ",)),
    (("Dien Bien",), ("Điện Biên",)),
    (("Lang Son",), ("Lạng Sơn",)),
    (("Bac Giang",), ("Bắc Giang",)),
    (("Hoa Binh",), ("Hòa Bình", "Hoà Bình")),
    (("Vinh Phuc",), ("Vĩnh Phúc",)),
    (("Kon Tum",), ("Kon Tum",)),
    (("Gia Lai",), ("Gia Lai",)),
    (("Dak Lak", "Daklak"), ("Đắk Lắk",)),
    (("Phu Yen",), ("Phú Yên",)),
    (("Ninh Thuan",), ("Ninh Thuận",)),
    (("Binh Thuan",), ("Bình Thuận",)),
    (("Tra Vinh",), ("Trà Vinh",)),
    (("Con Dao",), ("Côn Đảo",)),
    (("Cu Chi",), ("Củ Chi",)),
    (("Hoan Kiem Lake",), ("Hồ Hoàn Kiếm", "hồ Hoàn Kiếm")),
    (("Phong Nha",), ("Phong Nha",)),
)


def _table(source: str) -> dict[str, str]:
    """Every way a place is written in a ``source`` text -> its name in the other language
    (a name written the other language's way, ``Hà Nội`` in English, is carried as it is)."""
    table: dict[str, str] = {}
    for english, vietnamese in PLACES:
        if source == "en":
            table.update((name, vietnamese[0]) for name in english)
            table.update((name, name) for name in vietnamese if name not in table)
        else:
            for name in vietnamese:
                table.setdefault(name, english[0])
                table.setdefault(strip_diacritics(name), english[0])
            table.update((name, english[0]) for name in english if name not in table)
    return table


def _trie(names: list[str]) -> str:
    """One regular expression for ``names`` with their common beginnings factored out
    (``Ha(?: Long(?: Bay)?| Noi)``): the engine then reads each character of a text once
    or so, where a flat alternation tries every name at every position (12 µs a sentence
    for this table, against under 1 µs). Longer names first at each branch: ``Ho Chi Minh
    City`` wins over ``Ho Chi Minh``."""
    branches: dict[str, list[str]] = {}
    ends_here = False
    for name in names:
        if name:
            branches.setdefault(name[0], []).append(name[1:])
        else:
            ends_here = True
    alternatives = [re.escape(first) + _trie(rests) for first, rests in sorted(branches.items())]
    if not alternatives:
        return ""
    body = alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"
    return f"(?:{body})?" if ends_here else body


def _pattern(names: dict[str, str]) -> re.Pattern[str]:
    # No look-behind: the engine then skips ahead to the characters a name can start with
    # (the start of a word is checked on each match, :func:`_matches`).
    return re.compile(rf"(?:{_trie(list(names))})(?!\w)")


def _matches(pattern: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    """``pattern``'s matches in ``text`` that start a word (not ``xHue`` or ``a.Hue``)."""
    for match in pattern.finditer(text):
        start = match.start()
        if start == 0 or not (text[start - 1].isalnum() or text[start - 1] in "_."):
            yield match


_NAMES = {source: _table(source) for source in ("en", "vi")}
_PATTERNS = {source: _pattern(names) for source, names in _NAMES.items()}


_ANY_NAME = _pattern({**_NAMES["en"], **_NAMES["vi"]})


def find_place_names(text: str) -> list[Span]:
    """The places of ``text`` written in either language, left to right: what casing must
    leave as it is (``Da Nang`` in a heading is not ``Da nang``)."""
    if text.islower():
        return []
    return [Span(m.start(), m.end(), m.group()) for m in _matches(_ANY_NAME, text)]


def find_places(text: str, source: str, target: str) -> list[Span]:
    """The places of ``text`` (in ``source``) with their names in ``target``, left to right;
    none for any other pair than English and Vietnamese."""
    if (source, target) not in (("en", "vi"), ("vi", "en")) or text.islower():
        return []  # every name holds a capital
    names = _NAMES[source]
    return [
        Span(match.start(), match.end(), match.group(), names[match.group()])
        for match in _matches(_PATTERNS[source], text)
    ]
