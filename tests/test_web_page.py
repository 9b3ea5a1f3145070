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
