import unicodedata

import pytest

from model.text.tokenizer import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    UNK_ID,
    SubwordTokenizer,
    TokenizerError,
    Tokenizers,
)


def test_special_ids_are_fixed(tiny_tokenizers: Tokenizers) -> None:
    for tokenizer in (tiny_tokenizers.source, tiny_tokenizers.target):
        assert tokenizer.pieces([PAD_ID, UNK_ID, BOS_ID, EOS_ID]) == [
            "<pad>",
            "<unk>",
            "<s>",
            "</s>",
        ]


def test_composed_and_decomposed_vietnamese_get_the_same_ids(tiny_tokenizers: Tokenizers) -> None:
    text = "Tôi yêu Việt Nam, hôm nay trời đẹp"
    decomposed = unicodedata.normalize("NFD", text)
    assert decomposed != text
    target = tiny_tokenizers.target
    assert target.encode(decomposed) == target.encode(text)
    assert target.decode(target.encode(decomposed)) == unicodedata.normalize("NFC", text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("naïve café 😀", "naïve café 😀"),
        ("Ωμέγα ζ 東京 ₫1.000", "Ωμέγα ζ 東京 ₫1.000"),
        ("tab\tand  spaces ", "tab\tand spaces"),  # runs of spaces fold, a tab survives
    ],
)
def test_unseen_characters_survive_round_trip(
    tiny_tokenizers: Tokenizers, text: str, expected: str
) -> None:
    source = tiny_tokenizers.source
    ids = source.encode(text)
    assert UNK_ID not in ids
    assert source.decode(ids) == expected


def test_decode_skips_special_ids(tiny_tokenizers: Tokenizers) -> None:
    target = tiny_tokenizers.target
    ids = target.encode("tôi yêu mèo")
    assert target.decode([BOS_ID, *ids, EOS_ID, PAD_ID]) == "tôi yêu mèo"


def test_round_trip_through_file(tmp_path, tiny_tokenizers: Tokenizers) -> None:
    path = tmp_path / "target.spm"
    tiny_tokenizers.target.save(path)
    loaded = SubwordTokenizer.load(path)
    assert loaded.encode("chó lớn") == tiny_tokenizers.target.encode("chó lớn")


def test_broken_model_file_is_a_clear_error(tmp_path) -> None:
    path = tmp_path / "broken.spm"
    path.write_bytes(b"not a model")
    with pytest.raises(TokenizerError, match=r"broken\.spm"):
        SubwordTokenizer.load(path)
    with pytest.raises(TokenizerError, match=r"missing\.spm"):
        SubwordTokenizer.load(tmp_path / "missing.spm")
