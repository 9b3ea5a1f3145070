"""Format specifiers, template fields, inline tags, key names and versions come back byte for
byte, exactly as often as the source has them: in training data, at inference and in the CLI."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from cli.translate import main as translate_main
from model.store.checkpoint import load_model
from model.text.protect import mask, protect_pair, restore
from model.text.spans import find_specifiers
from model.translator import Translator

BUNDLED_MODEL = Path(__file__).resolve().parents[1] / "models" / "en-vi"

# Software strings and what must come back from each, as often as listed.
SOFTWARE = {
    "Welcome back, {name}!": ["{name}"],
    "Downloading %1$s of %2$s...": ["%1$s", "%2$s"],
    "Copy %s to %s.": ["%s", "%s"],
    "Hello {{user}}, you have %d new messages.": ["{{user}}", "%d"],
    "%(count)d files were deleted.": ["%(count)d"],
    "Progress: %.1f%% done.": ["%.1f", "%%"],
    "The :attribute field is required.": [":attribute"],
    "Your total is ${amount} today.": ["${amount}"],
    "Press Ctrl+S to save the file.": ["Ctrl+S"],
    "Use Ctrl+Shift+Z to redo, not Cmd+Z.": ["Ctrl+Shift+Z", "Cmd+Z"],
    "Press Ctrl+c to copy, Alt+Tab to switch.": ["Ctrl+c", "Alt+Tab"],
    "Update to version 2.4.1 now.": ["2.4.1"],
    "Click <b>Save</b> to continue.": ["<b>", "</b>"],
    "Item {0} of {1}": ["{0}", "{1}"],
    "%@ sent you a message.": ["%@"],
    "Deleted %1 files from %2.": ["%1", "%2"],
    "Rock &amp; roll {{ user.name }}": ["&amp;", "{{ user.name }}"],
}


@pytest.mark.parametrize(("text", "spans"), list(SOFTWARE.items()))
def test_specifiers_are_masked_in_training_and_at_inference(text: str, spans: list[str]) -> None:
    for masked in (mask(text), mask(text, lambda word: True)):
        assert Counter(
            original
            for original, n in zip(masked.originals, masked.occurrences, strict=True)
            for _ in range(n)
        ) == Counter(spans)
        assert restore(masked.text, masked.originals, masked.occurrences).text == text


@pytest.mark.parametrize(
    "text",
    [
        "We grew 50% of the time and 100% in May.",  # percentages, not printf
        "Note: this is it.",  # a colon before a space is punctuation
        "Set {x y} and {} or a lone % sign",
        "Send an e-mail to a@b.org: done.",
    ],
)
def test_ordinary_text_is_not_taken_for_specifiers(text: str) -> None:
    assert [span.text for span in find_specifiers(text)] in ([], ["{}"])


def test_a_pair_gets_the_same_placeholders_on_both_sides() -> None:
    masked, target = protect_pair("Copy %s to %2$s now", "Chép %s vào %2$s ngay")
    assert masked.originals == ("%s", "%2$s")
    assert target == "Chép \ue001 vào \ue002 ngay"
    # a specifier on one side only stays text: the model never learns to invent one
    masked, target = protect_pair("Copy %s now", "Chép ngay")
    assert masked.originals == () and target == "Chép ngay"


def test_every_copy_comes_back_exactly_as_often_as_the_source_has_it() -> None:
    masked = mask("Copy %s to %s and {0}.")
    one_copy = restore("Chép \ue001 vào.", masked.originals, masked.occurrences)
    assert one_copy.text.count("%s") == 2 and one_copy.text.count("{0}") == 1
    assert one_copy.missing == ("%s", "{0}")
    looped = restore("\ue001 \ue001 \ue001 \ue002 \ue002", masked.originals, masked.occurrences)
    assert looped.text.count("%s") == 2 and looped.text.count("{0}") == 1


needs_model = pytest.mark.skipif(
    not (BUNDLED_MODEL / "config.json").is_file(), reason="no bundled model in this checkout"
)


@needs_model
def test_the_bundled_model_keeps_every_specifier(tmp_path: Path) -> None:
    translator = Translator(load_model(BUNDLED_MODEL), device="cpu")
    outputs = translator.translate(list(SOFTWARE), beam=2)
    for output, (source, spans) in zip(outputs, SOFTWARE.items(), strict=True):
        for span in set(spans):
            assert output.count(span) == source.count(span), (source, output)
    # and so does the command line (int8 and the shortlist by default on a CPU)
    source_file = tmp_path / "in.txt"
    source_file.write_text("".join(line + "\n" for line in SOFTWARE), encoding="utf-8")
    output_file = tmp_path / "out.txt"
    options = ["--model", str(BUNDLED_MODEL), "--device", "cpu", "--beam", "2", "--quiet"]
    assert (
        translate_main([*options, "--input", str(source_file), "--output", str(output_file)]) == 0
    )
    lines = output_file.read_text(encoding="utf-8").splitlines()
    for output, (source, spans) in zip(lines, SOFTWARE.items(), strict=True):
        for span in set(spans):
            assert output.count(span) == source.count(span), (source, output)
