"""The one text pipeline (model/text/pipeline.py): its steps in order and reversed, zero-width
characters as word breaks, and ``mt-translate`` answering exactly as ``POST /translate`` does
with the bundled model on everyday text (capitals, Title Case, a byte order mark, zero-width
characters, bullets and numbered lines, shouted words)."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from cli.translate import main as translate_main
from model.store.locations import bundled_model_dir
from model.text.pipeline import SENTENCE_STEPS, TEXT_STEPS, TextPipeline
from service.app import create_app
from tests.test_service_api import settings_for

PLAIN = TextPipeline(known=None, masks_spans=False, masks_identifiers=False)

EVERYDAY = [
    "HELLO WORLD",
    "Where Is The Train Station?",
    "\ufeffI love the city.",
    "I love the\u200bcity.",
    "We\u200b\u200bsee the\u2060house\u200d today.",
    "Please DO NOT touch the screen.",
    "- the cat\n- a big dog\n1. we see the city\n2) WE LOVE THE HOUSE.",
    "Our list:\n\n  * the small house",
]


def test_the_steps_run_in_one_order_and_back() -> None:
    assert [step.name for step in PLAIN.steps] == [*TEXT_STEPS, *SENTENCE_STEPS]
    segments = PLAIN.prepare("THE CAT IS HERE. The dog\n- a bird")
    assert [s.text for s in segments] == ["The cat is here.", "The dog", "\n", "- ", "a bird"]
    assert [s.style for s in segments] == ["upper", "as_is", "as_is", "as_is", "as_is"]
    assert [s.for_model for s in segments] == [True, True, False, False, True]
    # The model's input of one sentence, and the way back to the text.
    encoded = PLAIN.for_model(segments[1].text)
    assert (encoded.text, encoded.full_stop) == ("The dog.", True)
    assert PLAIN.from_model("Con chó.", encoded) == "Con chó"
    translations = ["Con mèo ở đây.", "Con chó", "\n", "- ", "một con chim"]
    assert PLAIN.finish(segments, translations) == "CON MÈO Ở ĐÂY. Con chó\n- một con chim"


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        ("I love the\u200bcity.", "I love the city."),
        ("\ufeffI love the city.", "I love the city."),
        ("the\u2060house and 3\u200b4", "the house and 3 4"),
        ("a\u200b\u200bb", "a b"),
        ("end.\u200b", "end."),
        ("the \u200bcity", "the city"),
        ("می\u200cخواهم", "می\u200cخواهم"),  # a joiner inside a word spells it
    ],
)
def test_zero_width_spaces_between_words_are_word_breaks(text: str, cleaned: str) -> None:
    assert PLAIN.clean(text) == cleaned
    assert PLAIN.prepare(text)[0].text == cleaned


@pytest.mark.slow
def test_mt_translate_answers_like_the_service(tmp_path: Path) -> None:
    model = bundled_model_dir()
    source = tmp_path / "everyday.txt"
    # One input line per text: a text's own line breaks are escaped by mt-translate's format,
    # so the multi-line texts go to the service one line at a time too.
    lines = [line for text in EVERYDAY for line in text.split("\n")]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    output = tmp_path / "out.txt"
    status = translate_main(
        ["--model", str(model), "--device", "cpu", "--input", str(source), "--output", str(output)]
    )
    assert status == 0
    cli = output.read_text(encoding="utf-8").split("\n")[:-1]

    with TestClient(
        create_app(settings_for(model, beam=None, batch_limit=64, char_limit=2000))
    ) as client:
        response = client.post("/translate", json={"q": lines, "source": "en", "target": "vi"})
    assert response.status_code == 200, response.text
    served = response.json()["translatedText"]
    assert cli == served
    by_line = dict(zip(lines, cli, strict=True))
    assert by_line["HELLO WORLD"].isupper()  # translated, not copied
    assert by_line["I love the\u200bcity."] == by_line["\ufeffI love the city."]
