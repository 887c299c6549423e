"""Model output rendered as Markdown on the server: code highlighted, and nothing in it able to
run, navigate to script, or fetch."""

from __future__ import annotations

from gateway.review.markdown import code_css, render
from tests.review_support import HOSTILE


def test_markdown_and_highlighted_code() -> None:
    text = "**Done.**\n\n```python\ndef f(x):\n    return '<b>'\n```\n\n| a | b |\n|-|-|\n| 1 | 2 |"
    html = render(text)
    assert "<strong>Done.</strong>" in html
    assert '<span class="k">def</span>' in html and "<span class=\"s1\">'&lt;b&gt;'</span>" in html
    assert "<table>" in html
    assert ".md pre .k " in code_css(".md pre")


def test_an_unknown_language_is_plain_escaped_text() -> None:
    html = render("```klingon\n<b>qapla'</b>\n```")
    assert "&lt;b&gt;qapla'&lt;/b&gt;" in html and "<b>" not in html


def test_a_hostile_output_is_inert() -> None:
    html = render(HOSTILE)
    assert "<script" not in html and "<img" not in html
    assert "onerror=&quot;" in html and 'onerror="' not in html  # only as escaped text
    assert 'href="javascript' not in html
    assert "[image: pixel]" in html and "127.0.0.1:9" not in html
    assert '" onmouseover' not in html  # the fence's language cannot break out of its attribute


def test_links_open_apart_without_the_referrer() -> None:
    html = render("[docs](https://example.org/x)")
    assert 'href="https://example.org/x"' in html
    assert 'rel="noopener noreferrer nofollow"' in html
