"""The web page's markup, without a browser (tests/test_browser.py drives it in Chromium)."""

from __future__ import annotations

import re
from pathlib import Path

PAGE = Path(__file__).resolve().parents[1] / "service" / "static" / "index.html"


def _css(html: str) -> str:
    return re.sub(r"\s+", "", "".join(re.findall(r"<style>(.*?)</style>", html, re.S)))


def test_hidden_attribute_beats_display_rules() -> None:
    """`.row{display:flex}` used to override `hidden`, so the API-key field always showed."""
    html = PAGE.read_text(encoding="utf-8")
    assert '<div class="row" id="api-key-row" hidden>' in html
    css = _css(html)
    assert ".row{display:flex" in css  # the rule that would win without the fix
    assert "[hidden]{display:none!important;}" in css


def test_the_swap_button_starts_hidden_and_follows_the_served_pairs() -> None:
    """Shown only once /languages lists the reverse pair: a one-model server never shows it
    (tests/test_browser.py clicks it against a two-model server)."""
    html = PAGE.read_text(encoding="utf-8")
    button = re.search(r"<button id=\"swap-btn\"[^>]*>", html)
    assert button is not None and " hidden" in button.group(0)
    assert "fetch('languages'" in html
    assert "swapBtn.hidden = !serves(pair.target, pair.source);" in html
    assert "source: pair.source," in html and "target: pair.target," in html
