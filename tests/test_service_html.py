"""``format: "html"``: markup comes back byte for byte; a sentence across inline tags is one
sentence, and its tags are put back around the words they covered."""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Callable
from html.parser import HTMLParser

import pytest

from model.text.html import HtmlTemplate, InlineRun, parse_html
from model.text.html_inline import Segment, render_run
from model.text.sentences import is_line_break, split_sentences


def aligned_segments(
    run: InlineRun,
    change: Callable[[str], str] = str.upper,
    reverse: bool = False,
    attention: bool = True,
) -> list[Segment]:
    """A stand-in translation of ``run``: every word changed by ``change`` (in reverse order
    when ``reverse``), one piece per word, attention on the word it came from."""
    segments = []
    for sentence in split_sentences(run.text):
        if is_line_break(sentence):
            segments.append(Segment(sentence, sentence, layout=True))
            continue
        words = sentence.split()
        order = list(range(len(words)))[::-1] if reverse else list(range(len(words)))
        targets = [change(words[i]) for i in order]
        weights = [[1.0 if i == source else 0.0 for i in range(len(words))] for source in order]
        segments.append(
            Segment(
                sentence,
                " ".join(targets),
                [f"▁{word}" for word in words],
                [f"▁{word}" for word in targets],
                weights if attention else None,
            )
        )
    return segments


def translate(template: HtmlTemplate, **options: object) -> str:
    return template.render(
        [render_run(run, aligned_segments(run, **options)) for run in template.runs]  # type: ignore[arg-type]
    )


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text = ""
        self.tags: Counter[str] = Counter()

    def handle_data(self, data: str) -> None:
        self.text += data

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[f"<{tag} {attrs}>"] += 1

    def handle_endtag(self, tag: str) -> None:
        self.tags[f"</{tag}>"] += 1


def words_and_tags(document: str) -> tuple[Counter[str], Counter[str]]:
    """What a browser would show (upper-case characters) and the tags, as a parser sees them."""
    parser = _TextOnly()
    parser.feed(document)
    parser.close()
    # Characters, not words: a tag between two words may move with the words it sits between.
    return Counter(parser.text.upper().replace(" ", "").replace("\n", "")), parser.tags


# ------------------------------------------------------------------------------ parsing


@pytest.mark.parametrize(
    "document",
    [
        "",
        "plain text",
        '<!DOCTYPE html><html lang="en"><!-- note --><body><p title="a &amp; b">x</p></body>',
        "<p>line one\n  line two</p>\n<br/>\n<img src='a.png' alt=\"A cat\">",
        "<p>&nbsp;&copy;&#169;&#xA9;</p>",
        "a < b and c > d",
        "<p>unclosed <b",
        "<ul>\n<li>One</li>\n<li>Two</li></ul>\n",
    ],
)
def test_untranslated_rendering_gives_the_document_back(document: str) -> None:
    template = parse_html(document)
    # Feeding each text run back (escaped again) reproduces the markup exactly.
    rendered = template.render_text(list(template.texts))
    assert html.unescape(rendered) == html.unescape(document)
    # Verbatim pieces are slices of the document, in order.
    position = 0
    for piece in template.pieces:
        if isinstance(piece, str):
            found = document.find(piece, position)
            assert found >= position, piece
            position = found + len(piece)


def test_a_sentence_across_inline_tags_is_one_text_and_block_tags_split() -> None:
    template = parse_html(
        '<h1>Welcome</h1><p>Read the <a href="/docs">documentation</a> before you '
        "<em>start</em>.<br>Then <b>run <i>it</i></b>.</p><div>Bye <span>now</span></div>"
    )
    assert template.texts == (
        "Welcome",
        "Read the documentation before you start.",
        "Then run it.",
        "Bye now",
    )
    spans = template.runs[1].spans
    assert [(s.open_tag, template.runs[1].text[s.start : s.end]) for s in spans] == [
        ('<a href="/docs">', "documentation"),
        ("<em>", "start"),
    ]
    nested = template.runs[2].spans
    assert [(s.open_tag, s.parent) for s in nested] == [("<b>", None), ("<i>", 0)]


def test_untranslated_inline_elements_stay_inside_the_sentence_verbatim() -> None:
    template = parse_html(
        '<p>Run <code>pip install x</code> and <span translate="no">Acme</span>.</p>'
    )
    (run,) = template.runs
    assert run.text == "Run  and ."
    assert [a.markup for a in run.anchors] == [
        "<code>pip install x</code>",
        '<span translate="no">Acme</span>',
    ]
    out = translate(template)
    assert out == '<p>RUN <code>pip install x</code> AND <span translate="no">Acme</span>.</p>'


# ------------------------------------------------------------------------ putting tags back


@pytest.mark.parametrize(
    "document",
    [
        "<p>Hello <b>world</b> &amp; friends.</p>",
        '<p class="x">Read the <a href="/d?a=1&amp;b=2">documentation</a> now.</p>',
        "<p>Then <b>run <i>it</i> twice</b>. Done.</p>",
        "<p><b>One. Two.</b> Three.</p>",
        "<p><span>Hello</span> <!-- note --> world<br>Next <a href=#>link</a></p>",
        "<li>Click <img src=a.png alt=x> here</li>",
    ],
)
def test_with_a_word_for_word_alignment_the_markup_comes_back_in_place(document: str) -> None:
    out = translate(parse_html(document), change=lambda word: word)
    assert out == document


def test_tags_follow_their_words_when_the_translation_reorders_them() -> None:
    template = parse_html('<p>I like <b>red</b> <a href="/c">cars</a>.</p>')
    out = translate(template, reverse=True)
    # Reversed: "CARS. RED LIKE I" with each tag around the word it covered.
    assert out == '<p><a href="/c">CARS</a>. <b>RED</b> LIKE I</p>'


def test_closing_tags_go_before_trailing_punctuation() -> None:
    out = translate(parse_html("<p>Hello <b>world</b>!</p>"))
    assert out == "<p>HELLO <b>WORLD</b>!</p>"


def test_attention_on_the_final_full_stop_does_not_pull_a_word_into_the_tag() -> None:
    """The bundled model's attention for ``Hello world`` (translated as ``Hello world.``):
    ``n`` of ``Xin`` looks at the full stop, which belongs to the word ``world.``; counting it
    made ``Xin`` a translation of ``world`` and the whole sentence bold."""
    run = parse_html("<p>Hello <b>world</b></p>").runs[0]
    attention = [  # target pieces x source pieces (▁Hello, ▁world, .)
        [0.946, 0.045, 0.009],  # ▁Xi
        [0.023, 0.053, 0.924],  # n
        [0.986, 0.008, 0.006],  # ▁chào
        [0.012, 0.840, 0.147],  # ▁thế
        [0.001, 0.976, 0.024],  # ▁giới
        [0.208, 0.018, 0.773],  # .
    ]
    segment = Segment(
        "Hello world",
        "Xin chào thế giới",
        ["▁Hello", "▁world", "."],
        ["▁Xi", "n", "▁chào", "▁thế", "▁giới", "."],
        attention,
    )
    assert render_run(run, [segment]) == "Xin chào <b>thế giới</b>"


def test_without_attention_tags_are_placed_by_position() -> None:
    out = translate(parse_html("<p>Hello <b>big</b> world.</p>"), attention=False)
    assert out == "<p>HELLO <b>BIG</b> WORLD.</p>"


def test_only_text_is_translated_attributes_comments_scripts_styles_kept() -> None:
    document = (
        '<p class="lead" title="keep me">Hello <a href="/x?a=1&amp;b=2">world</a>!</p>'
        "<script>if (a < b) { say('hi'); }</script><style>p { color: red }</style>"
        "<code>keep code</code><pre>keep pre</pre><textarea>keep</textarea>"
        '<span translate="no">Brand</span><span class="x notranslate">Name</span>'
        "<!-- a comment --><div>  spaced  </div>"
    )
    out = translate(parse_html(document))
    assert out == (
        '<p class="lead" title="keep me">HELLO <a href="/x?a=1&amp;b=2">WORLD</a>!</p>'
        "<script>if (a < b) { say('hi'); }</script><style>p { color: red }</style>"
        "<code>keep code</code><pre>keep pre</pre><textarea>keep</textarea>"
        '<span translate="no">Brand</span><span class="x notranslate">Name</span>'
        "<!-- a comment --><div>  SPACED  </div>"
    )


def test_entities_are_unescaped_for_the_model_and_output_is_escaped() -> None:
    template = parse_html("<p>Tom &amp; Jerry &lt;3</p><p>&nbsp;</p>")
    assert template.texts == ("Tom & Jerry <3",)
    assert template.render_text(["A & B <tag>"]) == "<p>A &amp; B &lt;tag&gt;</p><p>&nbsp;</p>"


def test_nested_untranslated_elements_end_at_their_own_closing_tag() -> None:
    template = parse_html("<code><code>inner</code> still code</code> after")
    assert template.texts == ("after",)


def test_render_needs_one_translation_per_text() -> None:
    with pytest.raises(ValueError, match="2 translations for 1 texts"):
        parse_html("<p>one</p>").render(["a", "b"])


MALFORMED = [
    "<b><i>misnested</b> tags</i> here",
    "<p>unclosed <b>bold and <i>italic",
    "stray </b> close and </span> more text",
    "<a href='x'>link <a href='y'>inside</a> link</a> end",
    "<p>text <b",
    "<p>a <!-- unterminated comment",
    "<<>> < b > </ > text",
    "<span><span><span>deep</span></span></span> words <b></b><i> </i>",
    "<p>Line one<br>line two<br/>line <b>three</b></p>",
    "- item <b>one</b>\n- item two\n\n  1. <i>sub</i> item",
    "<b>One.</b> <i>Two. Three.</i> <u>Four</u>",
    "x" * 50 + "<b>" + "word " * 30 + "</b>",
]


@pytest.mark.parametrize("document", MALFORMED)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("attention", [False, True])
def test_malformed_html_never_raises_and_never_loses_text_or_tags(
    document: str, reverse: bool, attention: bool
) -> None:
    out = translate(parse_html(document), reverse=reverse, attention=attention)
    assert words_and_tags(out) == words_and_tags(document)
