"""One text to translate as runs of sentences, and how its translation is put back together.

:class:`model.translator.Translator` (and through it ``mt-translate`` and ``mt-eval``) and the
service translate every text this way, so the same text gets the same answer from both.

A text is cleaned by the model's pipeline (:mod:`model.text.pipeline`), then becomes one or
more *runs*: the whole text, or the runs of an HTML fragment (text with its inline markup,
:mod:`model.text.html`). Each run is split into sentences (line breaks, indentation and list
markers are layout segments that pass through), each sentence in a case the model knows.
Their translations are put back per run by the same pipeline (case restored, sentences
joined), and an HTML run's inline markup by the attention alignment
(:mod:`model.text.html_inline`), so such texts are decoded with attention.

Plain text with tags in it (``Click <b>Save</b> to continue.``, a software string) is
translated the HTML way as well: its tags are markup and everything else is text (``&`` and a
``<`` that opens no tag stay characters). The model reads ``Click Save to continue.`` and the
tags go back around the translated words. Carried inside the sentence instead, a tag touching
a word cut the word into rare pieces: the model wrote ``<b>Sve</b>`` and ``<i> </i>``.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Literal

from model.text.html import HtmlTemplate, escape_text, parse_html
from model.text.html_inline import Segment as InlineSegment
from model.text.html_inline import render_run
from model.text.pipeline import TextPipeline
from model.text.sentences import closed_sentences, is_line_break
from model.text.spans import find_markup
from model.translation import SentenceTranslation, kth_hypotheses

TextFormat = Literal["text", "html"]


def _outside_markup(text: str, change: Callable[[str], str]) -> str:
    """``text`` with ``change`` applied to everything but its tags and comments."""
    pieces, position = [], 0
    for span in find_markup(text):
        pieces += [change(text[position : span.start]), span.text]
        position = span.end
    pieces.append(change(text[position:]))
    return "".join(pieces)


class Document:
    """One text (``text_format``: ``"text"`` or ``"html"``) as the sentences the model
    translates, and its translation from theirs."""

    def __init__(self, pipeline: TextPipeline, text: str, text_format: TextFormat) -> None:
        self._pipeline = pipeline
        cleaned = pipeline.clean(text)
        self._tags_in_text = text_format == "text" and bool(find_markup(cleaned))
        self._template: HtmlTemplate | None = None
        if text_format == "html":
            self._template = parse_html(cleaned)
        elif self._tags_in_text:
            self._template = parse_html(_outside_markup(cleaned, escape_text))
        runs = list(self._template.texts) if self._template else [cleaned]
        # What the model sees: each sentence in a case it knows (layout passes as it is).
        self._runs = [pipeline.sentences(run) for run in runs]
        self.needs_attention = self._template is not None and any(
            run.has_markup for run in self._template.runs
        )

    @property
    def sentences(self) -> list[str]:
        """The model inputs, one per sentence or layout segment, in order."""
        return [segment.text for run in self._runs for segment in run]

    def _run_translation(self, run: int, results: list[SentenceTranslation], rank: int) -> str:
        """Run ``run`` translated with hypothesis ``rank`` of every sentence (its best when it
        has fewer): plain text, or HTML for an HTML document."""
        hypotheses = kth_hypotheses(results, rank)
        segments = self._runs[run]
        sources = [segment.source for segment in segments]
        texts = closed_sentences(
            self._pipeline.restore_case(segments, [hypothesis.text for hypothesis in hypotheses]),
            sources,
        )
        if self._template is None:
            return self._pipeline.join(texts, sources)
        inline = self._template.runs[run]
        if not inline.has_markup:
            return escape_text(self._pipeline.join(texts, sources))
        pieces = [
            InlineSegment(
                source=segment.source,
                target=text,
                source_tokens=result.source_tokens,
                target_tokens=hypothesis.target_tokens,
                attention=hypothesis.attention,
                layout=is_line_break(segment.source),
            )
            for segment, text, result, hypothesis in zip(
                segments, texts, results, hypotheses, strict=True
            )
        ]
        return render_run(inline, pieces)

    def translation(self, results: list[SentenceTranslation], rank: int = 0) -> str:
        """The text translated with hypothesis ``rank`` of every sentence; ``results``: one
        per sentence of :attr:`sentences`, in order."""
        per_run: list[list[SentenceTranslation]] = []
        position = 0
        for run in self._runs:
            per_run.append(results[position : position + len(run)])
            position += len(run)
        runs = [self._run_translation(i, own, rank) for i, own in enumerate(per_run)]
        if self._template is None:
            return runs[0]
        rendered = self._template.render(runs)
        return _outside_markup(rendered, html.unescape) if self._tags_in_text else rendered

    def assemble(
        self, results: list[SentenceTranslation], alternatives: int
    ) -> tuple[str, list[str]]:
        """The best translation and up to ``alternatives`` others, each made of the sentences'
        next hypotheses in turn, without repeats; ``results``: see :meth:`translation`."""
        best = self.translation(results)
        others: list[str] = []
        for rank in range(1, alternatives + 1):
            candidate = self.translation(results, rank)
            if candidate != best and candidate not in others:
                others.append(candidate)
        return best, others
