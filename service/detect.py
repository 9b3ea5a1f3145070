"""Language detection for ``POST /detect`` and ``source: "auto"`` (LibreTranslate's shapes).

The statistical detector is `langdetect <https://pypi.org/project/langdetect/>`_ (a port of
Google's language-detection): its 55 language profiles ship inside the package, so nothing is
downloaded at run time. It is seeded, so one text always gets one answer.

On its own it is unreliable exactly where this service needs it: it reads short English as
Finnish or Turkish (``Hello``, ``Milk``) and text in capitals as Vietnamese. Three rules
around it, for this English-to-Vietnamese service:

* It sees the text in NFC (macOS and Word often send NFD: a base letter followed by combining
  marks), in lower case, without markup, URLs, e-mail addresses and numbers. A word runs
  through combining marks, so text that is still decomposed is not cut at every accent.
* **Vietnamese** is recognised by letters no other language writes: ``ă đ ơ ư``, the hook
  above and the dot below (``ả ạ``), a tone mark on a circumflex vowel (``ố ệ``) and a tilde on
  ``i u y e`` (``ĩ ũ``). Acute, grave and plain circumflex are left out: French, Spanish and
  Portuguese use them too. A text with such letters in at least :data:`VIETNAMESE_SHARE` of its
  words (or in any word of a short text) is Vietnamese. Capitalised words are not counted
  when the text has English function words Vietnamese does not spell: English that names a
  Vietnamese person or place (``My name is Nguyễn Văn An``) is English.
* **Vietnamese typed without its marks** (``toi yeu thanh pho nay``, as on a keyboard without
  a Vietnamese layout) is recognised by its syllables: a (nearly) ASCII text of at least
  :data:`TONELESS_MIN_WORDS` words, at least :data:`TONELESS_OWN_SHARE` of them among the
  most frequent Vietnamese syllables written without marks that are not also common English
  words (:data:`TONELESS_VIETNAMESE`), at least :data:`TONELESS_SHARE` with the function words
  both languages spell (:data:`VIETNAMESE_LOOKALIKES`: ``do``, ``that``, ``the``...), and few
  other English function words.
* **English** gets the benefit of the doubt: a (nearly) ASCII text is English when it has
  English function words (``the``, ``is``, ``you``...), has fewer than :data:`SHORT_WORDS`
  words, or the detector is less than :data:`SURE` percent sure of another language (short
  English such as ``Shopping list: apples, milk`` reads as Tagalog to it).

Confidences are percentages (0-100), as LibreTranslate reports them.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass
from typing import Any

from model.text.spans import find_spans

SHORT_WORDS = 4  # below this many words, an ASCII text is taken for English
VIETNAMESE_SHARE = 0.1  # share of words with Vietnamese-only letters that makes it Vietnamese
SHORT_TEXT = 10  # words; in a shorter text one Vietnamese-only letter is enough
ENGLISH_SHARE = 0.15  # share of English function words that makes an ASCII text English
SURE = 90.0  # percent; below it, the detector does not overrule the English default
MAX_CANDIDATES = 3
TONELESS_MIN_WORDS = 2
TONELESS_SHARE = 0.6  # share of unmarked Vietnamese syllables that makes an ASCII text Vietnamese
TONELESS_OWN_SHARE = 0.4  # ... of which this share of the words only Vietnamese spells so

# Vietnamese-only letters, in NFD: base letters with a breve or horn, đ; the hook above and
# dot below; and (checked per letter) a tone on a circumflex vowel, a tilde on i, u, y or e.
_VIETNAMESE_LETTERS = frozenset("ăđơư")
_VIETNAMESE_MARKS = frozenset("\u0309\u0323")
_TONES = frozenset("\u0300\u0301\u0303\u0309\u0323")
_CIRCUMFLEX = "\u0302"
_TILDE = "\u0303"
ENGLISH_FUNCTION_WORDS = frozenset(
    """
    the a an and or but of to in on at for with from by is are was were be been am do does did
    not no i you he she it we they me my your our their this that these those there here what
    where when who why how which can will would should could have has had please thank thanks
    """.split()
)
# The 400 most frequent syllables of IWSLT'15's Vietnamese side with their marks taken off
# (đ as d), less those among the 30,000 most frequent words of its English side and single
# letters: 58% of the Vietnamese words there, and words an English sentence seldom has;
# then everyday words of conversation that TED talks seldom use or that English also spells.
TONELESS_VIETNAMESE = frozenset(
    """
    chao cam khoe em oi nhe roi sao nay di la co ban den ma da se rat com uong banh mi
    toi va nhung mot cua khong trong nguoi su cac voi duoc cho noi tu lam ve vi dieu ho nhu khi
    thu thay thuc dau cung doi lai phai vao viec anh cong hon gi nhieu nhan biet cach nam cai
    khac hoi cau tuong nghi vay tren thanh quan bo phan bao nen chuyen gia minh thi tinh tien
    neu bi nha nhat thong chinh ngay muon ong tro sau gio boi gioi hien dien tat thoi hoa dinh
    hinh dat cuoc nghe te dua toan nang lon nhin ay hai tam truong cu thuong hieu nho loai tri
    loi truoc sinh phat ky duong nuoc hanh trung xay kinh nhau ket ly vien nua vat nhien trinh
    mang phu lieu chua giai luong tham phong trai tiep thiet giong giao xa bien kha xem goi tre
    tac thich huong cuu danh deu nghiem canh benh yeu bai vo tang thang vu nghia hoan tra vong
    khoi tay cuoi quoc hoac dao muc gan ngoai kiem kien chiec doan phuc pham tuyet ung khoang
    thuat trang lien tranh trien kho thuoc quyet khoa ki pho nghien het binh manh nu truyen xe
    tuoi quy giup tuc sach phuong xuat duc nhac tieng ngan giua tieu phap dich chien ro duoi
    suc khien hoat xuong ngoi buc che cham chuc ty hau khu tru vung luon bac nghiep dac chon
    cuc truc cay viet mua thien pha tho trieu giac vang cang chay chet suy si buoc giam chia
    ngon thap nhom quay hom chong troi chac xin chut nhiem nhanh lua phep niem quanh xac vuc
    thieu lanh thuyet dep phim nguon bong luan phia bieu giay vua dem dia
    """.split()
)
# English function words that are also Vietnamese syllables without their marks (đó, thật,
# ăn, ơn, thể, nó, to, mẹ, á, ở): they count for both languages in a text without marks.
VIETNAMESE_LOOKALIKES = frozenset("do that an on the no to me a o".split())
_ENGLISH_ONLY_FUNCTION_WORDS = ENGLISH_FUNCTION_WORDS - VIETNAMESE_LOOKALIKES
_TAG = re.compile(r"<[^>]*>")
# A letter, then letters and combining marks (the generic combining blocks: diacritics,
# their extensions and supplement, marks for symbols, half marks), with inner apostrophes.
_LETTER = r"[^\W\d_]"
_MARK = "[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]"
_WORD = re.compile(rf"{_LETTER}(?:{_LETTER}|{_MARK})*(?:['’]{_LETTER}(?:{_LETTER}|{_MARK})*)*")


# English names of the languages langdetect knows, for error messages.
LANGUAGE_NAMES = {
    "af": "Afrikaans", "ar": "Arabic", "bg": "Bulgarian", "bn": "Bengali", "ca": "Catalan",
    "cs": "Czech", "cy": "Welsh", "da": "Danish", "de": "German", "el": "Greek",
    "en": "English", "es": "Spanish", "et": "Estonian", "fa": "Persian", "fi": "Finnish",
    "fr": "French", "gu": "Gujarati", "he": "Hebrew", "hi": "Hindi", "hr": "Croatian",
    "hu": "Hungarian", "id": "Indonesian", "it": "Italian", "ja": "Japanese", "kn": "Kannada",
    "ko": "Korean", "lt": "Lithuanian", "lv": "Latvian", "mk": "Macedonian",
    "ml": "Malayalam", "mr": "Marathi", "ne": "Nepali", "nl": "Dutch", "no": "Norwegian",
    "pa": "Punjabi", "pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian",
    "sk": "Slovak", "sl": "Slovenian", "so": "Somali", "sq": "Albanian", "sv": "Swedish",
    "sw": "Swahili", "ta": "Tamil", "te": "Telugu", "th": "Thai", "tl": "Tagalog",
    "tr": "Turkish", "uk": "Ukrainian", "ur": "Urdu", "vi": "Vietnamese",
    "zh-cn": "Chinese", "zh-tw": "Chinese",
}  # fmt: skip


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code)


@dataclass(frozen=True)
class Detection:
    language: str  # ISO 639-1 code, as langdetect names it ("en", "vi", "zh-cn")
    confidence: float  # 0-100

    def as_json(self) -> dict[str, Any]:
        return {"language": self.language, "confidence": self.confidence}


def _has_vietnamese_letter(word: str) -> bool:
    """Whether ``word`` has a letter that only Vietnamese writes (module docstring)."""
    lower = word.lower()
    if any(ch in _VIETNAMESE_LETTERS for ch in lower):
        return True
    for letter in lower:
        decomposed = unicodedata.normalize("NFD", letter)
        marks = set(decomposed[1:])
        if marks & _VIETNAMESE_MARKS or (_CIRCUMFLEX in marks and marks & _TONES):
            return True
        if _TILDE in marks and decomposed[0] in "iuye":
            return True
    return False


def _toneless_vietnamese_share(words: list[str]) -> float | None:
    """The share of ``words`` (lower case) that are unmarked Vietnamese syllables, when it
    makes the text Vietnamese written without its marks (module docstring); else None."""
    if len(words) < TONELESS_MIN_WORDS or not all(word.isascii() for word in words):
        return None
    own = sum(1 for word in words if word in TONELESS_VIETNAMESE) / len(words)
    share = own + sum(1 for word in words if word in VIETNAMESE_LOOKALIKES) / len(words)
    english = sum(1 for word in words if word in _ENGLISH_ONLY_FUNCTION_WORDS) / len(words)
    if share < TONELESS_SHARE or own < TONELESS_OWN_SHARE or english >= ENGLISH_SHARE:
        return None
    return share


def prepare_text(text: str, is_html: bool = False) -> str:
    """What the detector reads: NFC, lower case, no markup, URLs, e-mail addresses or
    numbers, and no Vietnamese names in an English text (:func:`_without_vietnamese_names`)."""
    text = unicodedata.normalize("NFC", text)
    if is_html:
        text = _TAG.sub(" ", text)
    for span in reversed(find_spans(text)):
        text = text[: span.start] + " " + text[span.end :]
    return _without_vietnamese_names(text).lower()


def _without_vietnamese_names(text: str) -> str:
    """``text`` without its capitalised words in Vietnamese letters when it also has English
    function words that Vietnamese does not spell (``is``, ``and``, ``my``): English that names
    a Vietnamese person or place (``My name is Nguyễn Văn An``, ``We visited Huế``) is
    English, where one such letter would otherwise make it Vietnamese."""
    words = _WORD.findall(text)
    if not any(word.lower() in _ENGLISH_ONLY_FUNCTION_WORDS for word in words):
        return text
    names = {word for word in words if word[:1].isupper() and _has_vietnamese_letter(word)}
    if not names:
        return text
    return _WORD.sub(lambda match: " " if match.group() in names else match.group(), text)


def text_words(prepared: str) -> list[str]:
    """The words of a text as :func:`prepare_text` gives it (letters, combining marks and
    inner apostrophes; digits and punctuation separate words)."""
    return _WORD.findall(prepared)


class LanguageDetector:
    """Thread-safe; the profiles are loaded on first use (about a second)."""

    def __init__(self, seed: int = 0) -> None:
        self._seed = seed
        self._factory: Any = None
        self._lock = threading.Lock()

    def _statistical(self, text: str) -> list[Detection]:
        from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory
        from langdetect.lang_detect_exception import LangDetectException

        with self._lock:
            if self._factory is None:
                factory = DetectorFactory()
                factory.load_profile(PROFILES_DIRECTORY)
                factory.set_seed(self._seed)
                self._factory = factory
            detector = self._factory.create()
        detector.append(text)
        try:
            found = detector.get_probabilities()
        except LangDetectException:  # no features (no letters it knows)
            return []
        return [Detection(str(item.lang), round(100 * float(item.prob), 1)) for item in found]

    def detect(self, text: str, is_html: bool = False) -> list[Detection]:
        """Candidate languages of ``text``, most likely first (at most three); a text with no
        letters is English with confidence 0 (there is nothing to tell)."""
        prepared = prepare_text(text, is_html)
        words = text_words(prepared)
        if not words:
            return [Detection("en", 0.0)]
        marked = sum(1 for word in words if _has_vietnamese_letter(word))
        if marked and (marked >= VIETNAMESE_SHARE * len(words) or len(words) < SHORT_TEXT):
            share = marked / len(words)
            return [Detection("vi", round(min(100.0, 60.0 + 200.0 * share), 1))]
        toneless = _toneless_vietnamese_share(words)
        if toneless is not None:
            return [Detection("vi", round(min(95.0, 40.0 + 60.0 * toneless), 1))]
        candidates = self._statistical(prepared)
        english_words = sum(1 for word in words if word in ENGLISH_FUNCTION_WORDS) / len(words)
        nearly_ascii = sum(1 for word in words if word.isascii()) >= 0.9 * len(words)
        top = candidates[0] if candidates else Detection("en", 0.0)
        doubtful = top.language != "en" and top.confidence < SURE
        short = len(words) < SHORT_WORDS
        if nearly_ascii and (english_words >= ENGLISH_SHARE or short or doubtful):
            english = next((c.confidence for c in candidates if c.language == "en"), 0.0)
            # Function words (or too little text to tell) decide; confidence says how sure.
            confidence = max(english, round(min(100.0, 50.0 + 200.0 * english_words), 1))
            others = [c for c in candidates if c.language != "en"]
            return [Detection("en", confidence), *others][:MAX_CANDIDATES]
        return candidates[:MAX_CANDIDATES] or [Detection("en", 0.0)]
