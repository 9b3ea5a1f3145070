"""A text as the sentences the model reads and back: plain text with tags in it is translated
the HTML way, the same from the Translator (``mt-translate``) and from the service."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.document import Document
from model.text.pipeline import TextPipeline
from model.translator import Translator
from tests.test_service_api import serve, settings_for

TEXTS = [
    "Click <b>Save</b> to continue & go <3",
    'See <a href="/help?a=1&b=2">the help</a>.\nThen press <kbd>Enter</kbd>.',
    "No tags: 5 < 6 and Tom & Jerry.",
    "Save &amp; Exit <i>now</i>",
]


def pipeline() -> TextPipeline:
    return TextPipeline(known=None, masks_spans=True, masks_identifiers=False)


def test_the_model_reads_the_words_without_the_tags() -> None:
    document = Document(pipeline(), TEXTS[0], "text")
    assert document.sentences == ["Click Save to continue & go <3"]
    assert document.needs_attention
    plain = Document(pipeline(), TEXTS[2], "text")
    assert plain.sentences == [TEXTS[2]] and not plain.needs_attention
    # an entity written in plain text is text: the model reads it as the user wrote it
    assert Document(pipeline(), TEXTS[3], "text").sentences == ["Save &amp; Exit now"]


def test_tags_come_back_once_each_and_characters_stay_characters(tiny_model_dir: Path) -> None:
    translator = Translator.from_dir(tiny_model_dir, device="cpu")
    first, second, plain, entity = translator.translate(TEXTS)
    assert first.count("<b>") == first.count("</b>") == 1
    assert first.index("<b>") < first.index("</b>")
    assert '<a href="/help?a=1&b=2">' in second and "</a>" in second
    assert second.count("<kbd>") == second.count("</kbd>") == 1 and "\n" in second
    for translation in (first, second, plain):
        assert "&amp;" not in translation and "&lt;" not in translation
    assert entity.count("<i>") == entity.count("</i>") == 1


@pytest.mark.anyio
async def test_the_service_and_the_translator_agree_on_text_with_tags(
    tiny_model_dir: Path,
) -> None:
    # the service's defaults (and beam 3, as settings_for sets it)
    translator = Translator.from_dir(
        tiny_model_dir, device="cpu", quantize="auto", shortlist="auto"
    )
    expected = translator.translate(TEXTS, beam=3)
    async with serve(settings_for(tiny_model_dir)) as client:
        answer = await client.post(
            "/translate", json={"q": TEXTS, "source": "en", "target": "vi", "format": "text"}
        )
    assert answer.status_code == 200
    assert answer.json()["translatedText"] == expected
