"""Vietnamese as the source and English as the target: the text pipeline's language rules
(NFC first, capitals, Title Case, abbreviations, protected spans), the tokenized BLEU's Moses
language, and the training augmentation that strips diacritics from source words."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from model.evaluation import evaluate_translator, moses_tokenize, tokenized_bleu
from model.nn.config import ConfigError
from model.text.casing import prepare, restore_case
from model.text.pipeline import TextPipeline
from model.text.protect import PLACEHOLDERS
from model.text.sentences import split_sentences
from training.config import DataConfig, config_from_dict, load_config
from training.prepare import prepare_data
from training.tones import strip_diacritics, strip_tones
from training.toy import write_toy_dataset

REPO = Path(__file__).resolve().parents[1]
P1, P2, P3 = PLACEHOLDERS[:3]

# What the stand-in model is given (after the whole way in) and what it answers: a model
# input that is not here fails the test, naming what the model saw.
MODEL = {
    "Tôi thích con mèo.": "I like cats.",
    "Hướng dẫn sử dụng.": "User guide.",
    f"Đã tải {P1} tệp cho {P2} trong {P3} giây.": (
        f"Downloaded {P1} files for {P2} in {P3} seconds."
    ),
    "Tôi no.": "I am full.",
    "Cảm ơn.": "Thank you.",
}


def translate(pipeline: TextPipeline, text: str) -> tuple[str, list[str]]:
    """``text`` through ``pipeline`` and the stand-in model; the answer, and what the model
    was given."""
    given: list[str] = []
    answers = []
    for segment in pipeline.prepare(text):
        encoded = pipeline.for_model(segment.text)
        if not encoded.for_model:
            answers.append(segment.text)  # passed through as it is
            continue
        given.append(encoded.text)
        answers.append(pipeline.from_model(MODEL[encoded.text], encoded))
    return pipeline.finish(pipeline.prepare(text), answers), given


VI_EN = TextPipeline(None, masks_spans=True, masks_identifiers=False, languages=("vi", "en"))


def test_decomposed_vietnamese_translates_like_precomposed() -> None:
    composed = "Tôi thích con mèo"
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed
    assert translate(VI_EN, decomposed) == translate(VI_EN, composed)
    assert translate(VI_EN, decomposed) == ("I like cats", ["Tôi thích con mèo."])


def test_vietnamese_in_capitals_is_translated_in_sentence_case_and_answered_in_capitals() -> None:
    for text in ("TÔI THÍCH CON MÈO", unicodedata.normalize("NFD", "TÔI THÍCH CON MÈO")):
        assert translate(VI_EN, text) == ("I LIKE CATS", ["Tôi thích con mèo."])


def test_a_vietnamese_title_becomes_an_english_title() -> None:
    assert translate(VI_EN, "Hướng Dẫn Sử Dụng") == ("User Guide", ["Hướng dẫn sử dụng."])
    assert restore_case("user guide for the app", "title", "en") == "User Guide for the App"
    assert restore_case("hướng dẫn sử dụng", "title", "vi") == "Hướng dẫn sử dụng"


def test_specifiers_and_numbers_reach_the_english_translation_intact() -> None:
    text = "Đã tải %s tệp cho {name} trong 3,5 giây"
    answer, given = translate(VI_EN, text)
    assert given == [f"Đã tải {P1} tệp cho {P2} trong {P3} giây."]
    assert answer == "Downloaded %s files for {name} in 3,5 seconds"


def test_sentences_split_by_the_source_languages_abbreviations() -> None:
    text = "TS. Nguyễn Văn An sống ở TP. Hồ Chí Minh. Tôi no. Cảm ơn."
    assert split_sentences(text, "vi") == [
        "TS. Nguyễn Văn An sống ở TP. Hồ Chí Minh.",
        "Tôi no.",
        "Cảm ơn.",
    ]
    # English rules would cut at "TS." and "TP." and keep "no." (No. 5) in its sentence
    assert split_sentences(text, "en")[0] == "TS."
    assert translate(VI_EN, "Tôi no. Cảm ơn.") == ("I am full. Thank you.", ["Tôi no.", "Cảm ơn."])


def test_english_only_casing_rules_stay_out_of_vietnamese() -> None:
    # "an" is a Vietnamese word (an toàn: safe), not the English article
    assert prepare("Hệ Thống an Toàn", lang="vi").style == "as_is"
    assert prepare("Hệ Thống an Toàn", lang="en").style == "title"
    # English "I" stays a capital in an English sentence only
    assert prepare("WE AND I GO", lang="en").text == "We and I go"
    assert prepare("WE AND I GO", lang="vi").text == "We and i go"


def test_tokenized_bleu_tokenizes_with_the_target_language() -> None:
    hypotheses = ["It's the user's file, isn't it?"]
    english_reference = moses_tokenize(hypotheses, "en")
    assert english_reference != moses_tokenize(hypotheses, "vi")
    assert tokenized_bleu(hypotheses, english_reference, "en") == pytest.approx(100.0)
    assert tokenized_bleu(hypotheses, english_reference, "vi") < 100.0

    class Echo:
        def translate(self, texts: list[str], beam: int = 5) -> list[str]:
            return hypotheses

    report = evaluate_translator(
        Echo(), ["x"], english_reference, hypotheses, beam=1, target_lang="en"
    )
    assert report["bleu_tokenized"] == 100.0 and report["bleu_detokenized"] == 100.0
    assert report["chrf"] == 100.0 and set(report["signatures"]) == {
        "bleu_tokenized",
        "bleu_detokenized",
        "chrf",
    }


# ----------------------------------------------------------------------------- tone stripping


def test_diacritics_come_off_whole_words() -> None:
    assert strip_diacritics("Tiếng") == "Tieng"
    assert strip_diacritics("Đà Nẵng") == "Da Nang"
    assert strip_diacritics(unicodedata.normalize("NFD", "việt")) == "viet"
    assert strip_diacritics(f"{P1}ạ") == f"{P1}a"  # placeholders are not marks


def test_tone_stripping_is_seeded_and_off_at_zero() -> None:
    sentences = ["tôi thích con mèo nhỏ và ngôi nhà đỏ của họ"] * 200
    assert strip_tones(sentences, 0.0, seed=1) == sentences
    once, again = strip_tones(sentences, 0.1, seed=1), strip_tones(sentences, 0.1, seed=1)
    assert once == again
    assert strip_tones(sentences, 0.1, seed=2) != once
    words = [word for sentence in once for word in sentence.split()]
    originals = [word for sentence in sentences for word in sentence.split()]
    changed = sum(a != b for a, b in zip(words, originals, strict=True))
    marked = sum(strip_diacritics(word) != word for word in originals)
    assert 0.05 * marked < changed < 0.15 * marked  # about a tenth of the marked words
    assert all(b in (a, strip_diacritics(a)) for a, b in zip(originals, words, strict=True))


def test_whole_sentences_lose_every_mark_at_their_own_rate() -> None:
    sentences = [f"tôi thích con mèo số {n} và ngôi nhà đỏ" for n in range(400)]
    words_only = strip_tones(sentences, 0.1, seed=3)
    assert strip_tones(sentences, 0.1, seed=3, sentence_probability=0.0) == words_only
    both = strip_tones(sentences, 0.1, seed=3, sentence_probability=0.2)
    assert both == strip_tones(sentences, 0.1, seed=3, sentence_probability=0.2)
    whole = [i for i, line in enumerate(both) if line == strip_diacritics(sentences[i])]
    assert 0.1 * len(sentences) < len(whole) < 0.3 * len(sentences)  # about a fifth
    alone = strip_tones(sentences, 0.0, seed=3, sentence_probability=0.2)
    assert [i for i, line in enumerate(alone) if line != sentences[i]] == whole
    others = [i for i in range(len(sentences)) if i not in whole]
    assert [both[i] for i in others] == [words_only[i] for i in others]
    with pytest.raises(ConfigError, match="strip_tones_sentence_prob needs a Vietnamese"):
        config_from_dict({"data": {"strip_tones_sentence_prob": 0.05}})


def test_tone_stripping_is_off_by_default_and_needs_a_vietnamese_source() -> None:
    assert DataConfig().strip_tones_prob == 0.0
    assert load_config(REPO / "configs" / "cpu.toml").data.strip_tones_prob == 0.0
    assert load_config(REPO / "configs" / "cpu-vi-en.toml").data.strip_tones_prob == 0.1
    with pytest.raises(ConfigError, match="Vietnamese source"):
        config_from_dict({"data": {"strip_tones_prob": 0.1}})
    with pytest.raises(ConfigError, match="between 0 and 1"):
        config_from_dict(
            {"data": {"source_lang": "vi", "target_lang": "en", "strip_tones_prob": 2.0}}
        )
    with pytest.raises(ConfigError, match="must differ"):
        config_from_dict({"data": {"source_lang": "vi", "target_lang": "vi"}})


def test_training_strips_tones_from_training_sources_only(tmp_path: Path) -> None:
    write_toy_dataset(tmp_path / "data", train_pairs=60, dev_pairs=8, seed=4)
    values = {
        "tokenizer": {"source_vocab_size": 400, "target_vocab_size": 400, "model_type": "word"},
        "data": {"source_lang": "vi", "target_lang": "en", "moses_detokenize": False},
    }
    plain = prepare_data(config_from_dict(values), tmp_path / "data", None)
    values["data"] = {**values["data"], "strip_tones_prob": 0.3}
    config = config_from_dict(values)
    stripped = prepare_data(config, tmp_path / "data", None)
    again = prepare_data(config, tmp_path / "data", None)
    vietnamese = (tmp_path / "data" / "train.vi").read_text(encoding="utf-8").splitlines()
    assert plain.train_text.sources == vietnamese  # the source side is the Vietnamese file
    assert stripped.train_text.sources == again.train_text.sources != vietnamese
    assert stripped.train_text.targets == plain.train_text.targets  # English untouched
    dev_sources = (tmp_path / "data" / "tst2012.vi").read_text(encoding="utf-8").splitlines()
    source = stripped.tokenizers.source
    dev = stripped.dev.corpus.source
    assert [source.decode(dev[i].tolist()) for i in range(len(dev))] == dev_sources
    assert stripped.dev.references_tokenized == plain.dev.references_tokenized


def test_further_corpora_mix_in_reversed(tmp_path: Path) -> None:
    write_toy_dataset(tmp_path / "ted", train_pairs=40, dev_pairs=6, seed=6)
    software = tmp_path / "software"
    software.mkdir()
    english = ["Open the file.", "Don't save it!", "Close the window."]
    vietnamese = ["Mở tệp.", "Đừng lưu nó!", "Đóng cửa sổ."]
    for prefix in ("train", "dev"):
        (software / f"{prefix}.en").write_text("\n".join(english) + "\n", encoding="utf-8")
        (software / f"{prefix}.vi").write_text("\n".join(vietnamese) + "\n", encoding="utf-8")
    config = config_from_dict(
        {
            "tokenizer": {"source_vocab_size": 400, "target_vocab_size": 400, "model_type": "word"},
            "data": {"source_lang": "vi", "target_lang": "en", "moses_detokenize": False},
            "corpora": [{"name": "software", "dir": str(software), "weight": 0.5}],
        }
    )
    data = prepare_data(config, tmp_path / "ted", None)
    pairs = set(zip(data.train_text.sources, data.train_text.targets, strict=True))
    assert set(zip(vietnamese, english, strict=True)) <= pairs  # Vietnamese in, English out
    # the software dev references are tokenized as English for the tokenized BLEU
    assert data.corpus_devs["software"].references_tokenized == moses_tokenize(english, "en")
