"""Every text pass takes time linear in the input's length, whatever its shape: one unbroken
run of letters, of dashes or of exclamation marks, thousands of numbers, unterminated comments,
hundreds of inline tags. (A pass that rescans the rest of a run from every character freezes a
worker for seconds on a few thousand characters, and minutes on fifty thousand.)"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from model.text.html import parse_html
from model.text.html_inline import Segment, render_run
from model.text.pipeline import TextPipeline
from model.text.protect import mask
from model.text.spans import find_code_tokens, find_spans
from model.translator import Translator

KNOWN = frozenset("the a of to and in is it you that see call me at mr".split())
PIPELINE = TextPipeline(KNOWN.__contains__, masks_spans=True, masks_identifiers=True)
SIZES = (6_250, 12_500, 25_000, 50_000)


def repeat_to(shape: str, size: int) -> str:
    return (shape * (size // len(shape) + 1))[:size]


def best_time(work: Callable[[], object], tries: int = 3) -> float:
    """The fastest of ``tries`` runs: what the code costs, without the machine's hiccups. The
    cyclic garbage collector is paused meanwhile: its pauses depend on how many objects the
    tests before this one left behind, not on the code measured."""
    times = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(tries):
            started = time.perf_counter()
            work()
            times.append(time.perf_counter() - started)
    finally:
        gc.enable()
    return min(times)


def through_pipeline(text: str) -> None:
    for segment in PIPELINE.prepare(text):
        PIPELINE.for_model(segment.text)


@pytest.mark.parametrize(
    "shape",
    [
        "a",  # one unbroken run: technical tokens
        "ab-",  # a run of hyphenated pieces
        "a1",  # e-mail addresses (a local part without "@")
        "!!",  # sentence ends
        "<!--",  # comments that never end
        "€1 ",  # thousands of amounts and numbers to merge
        "Mr. A ",  # abbreviations that never end a sentence
        "Ab ",  # names
    ],
)
def test_the_text_pipeline_takes_linear_time(shape: str) -> None:
    """Each doubling of the input at most triples the time (linear: twice; quadratic: four
    times), up to 50,000 characters, which take well under a second."""
    previous = None
    for size in SIZES:
        text = repeat_to(shape, size)
        took = best_time(lambda text=text: through_pipeline(text))  # type: ignore[misc]
        if previous is not None:
            assert took <= 3 * previous + 0.02, f"{size} characters of {shape!r}: {took:.3f} s"
        previous = took
    assert previous is not None and previous < 1.0


@pytest.mark.parametrize(
    "document",
    [
        lambda size: repeat_to("<a ", size),  # tags that never end
        lambda size: repeat_to("<b>", size // 2) + repeat_to("</i>", size // 2),  # misnested
    ],
    ids=["unended tags", "unpaired closing tags"],
)
def test_html_parsing_takes_linear_time(document: Callable[[int], str]) -> None:
    previous = None
    for size in SIZES:
        html = document(size)
        took = best_time(lambda html=html: parse_html(html))  # type: ignore[misc]
        if previous is not None:
            assert took <= 3 * previous + 0.02, f"{size} characters: {took:.3f} s"
        previous = took
    assert previous is not None and previous < 1.0


def test_one_unbroken_run_of_fifty_thousand_characters_is_protected_at_once() -> None:
    run = "a" * 50_000
    assert best_time(lambda: (find_code_tokens(run), mask(run, KNOWN.__contains__)), 1) < 1.0
    # Long runs are still searched for URLs and numbers, in full.
    url = "https://example.com/" + "x" * 5_000
    assert [span.text for span in find_spans(f"see {url} or call 0912345678")] == [
        url,
        "0912345678",
    ]


def test_encoding_one_unbroken_run_takes_well_under_a_second(tiny_model_dir: Path) -> None:
    translator = Translator.from_dir(tiny_model_dir, device="cpu")
    run = "a" * 50_000
    encoded: list[object] = []
    took = best_time(lambda: encoded.append(translator.encode(run)), 1)
    assert took < 1.0
    assert sum(len(chunk) for chunk in encoded[0].chunks) >= 1  # type: ignore[attr-defined]


def test_hundreds_of_inline_tags_are_put_back_at_once() -> None:
    """380 tags in one sentence: each tag's words are looked up, not the whole run's."""
    run = parse_html("<p>" + " ".join(f"<b>w{i}</b>" for i in range(380)) + "</p>").runs[0]
    words = run.text.split()
    source = ["▁" + word for word in words]
    target = ["▁" + word.upper() for word in words]
    attention = [
        [1.0 if s == t else 0.001 * ((s * 7 + t) % 13) for s in range(len(source))]
        for t in range(len(target))
    ]
    segment = Segment(run.text, " ".join(target).replace("▁", ""), source, target, attention)
    rendered: list[str] = []
    took = best_time(lambda: rendered.append(render_run(run, [segment])), 1)
    assert took < 1.0
    assert rendered[0].startswith("<b>W0</b> <b>W1</b>") and rendered[0].count("<b>") == 380
