"""``format: "html"``: markup comes back byte for byte, only text nodes are translated."""

from __future__ import annotations

import html

import pytest

from service.html import parse_html


def shout(texts: tuple[str, ...]) -> list[str]:
    return [text.upper() for text in texts]


@pytest.mark.parametrize(
    "document",
    [
        "",
        "plain text",
        "<p>Hello <b>world</b> &amp; friends.</p>",
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
    rendered = template.render(list(template.texts))
    assert html.unescape(rendered) == html.unescape(document)
    # Verbatim pieces are slices of the document, in order.
    position = 0
    for piece in template.pieces:
        if isinstance(piece, str):
            found = document.find(piece, position)
            assert found >= position, piece
            position = found + len(piece)


def test_only_text_nodes_are_translated_and_markup_is_kept() -> None:
    document = (
        '<p class="lead" title="keep me">Hello <a href="/x?a=1&amp;b=2">world</a>!</p>'
        "<script>if (a < b) { say('hi'); }</script><style>p { color: red }</style>"
        "<code>keep code</code><pre>keep pre</pre><textarea>keep</textarea>"
        '<span translate="no">Brand</span><span class="x notranslate">Name</span>'
        "<div>  spaced  </div>"
    )
    template = parse_html(document)
    assert template.texts == ("Hello", "world", "spaced")
    out = template.render(shout(template.texts))
    assert out == (
        '<p class="lead" title="keep me">HELLO <a href="/x?a=1&amp;b=2">WORLD</a>!</p>'
        "<script>if (a < b) { say('hi'); }</script><style>p { color: red }</style>"
        "<code>keep code</code><pre>keep pre</pre><textarea>keep</textarea>"
        '<span translate="no">Brand</span><span class="x notranslate">Name</span>'
        "<div>  SPACED  </div>"
    )


def test_entities_are_unescaped_for_the_model_and_output_is_escaped() -> None:
    template = parse_html("<p>Tom &amp; Jerry &lt;3</p><p>&nbsp;</p>")
    assert template.texts == ("Tom & Jerry <3",)
    assert template.render(["A & B <tag>"]) == "<p>A &amp; B &lt;tag&gt;</p><p>&nbsp;</p>"


def test_nested_untranslated_elements_end_at_their_own_closing_tag() -> None:
    template = parse_html("<code><code>inner</code> still code</code> after")
    assert template.texts == ("after",)


def test_render_needs_one_translation_per_text() -> None:
    with pytest.raises(ValueError, match="2 translations for 1 texts"):
        parse_html("<p>one</p>").render(["a", "b"])
