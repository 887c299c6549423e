"""Model output as safe HTML: Markdown rendered on the server, code highlighted, nothing from
the output able to run or fetch. The only module that imports markdown-it and Pygments.

Safe because raw HTML is off (every `<` in the output arrives escaped), links keep only the
schemes markdown-it allows (no javascript:, vbscript:, file:), and images become their alt
text: a review page opened offline fetches nothing, and an output cannot plant a tracking pixel.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

CODE_STYLE = "friendly"  # a light Pygments style that reads well beside prose
_FORMATTER = HtmlFormatter(nowrap=True, style=CODE_STYLE)


def render(text: str) -> str:
    """The output's Markdown as HTML safe to insert into the page."""
    rendered: str = _parser().render(text)
    return rendered


def code_css(scope: str) -> str:
    """The highlighting classes' CSS, scoped under `scope` (e.g. `.md pre`)."""
    css: str = _FORMATTER.get_style_defs(scope)  # type: ignore[no-untyped-call]
    return css


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    # js-default: CommonMark with tables and strikethrough, and raw HTML off.
    md = MarkdownIt("js-default", {"highlight": _highlight})
    md.add_render_rule("image", _image)
    md.add_render_rule("link_open", _link_open)
    return md


def _highlight(code: str, lang: str, _attrs: str) -> str:
    """Highlighted HTML for a fenced block, or "" to let markdown-it escape it as plain text."""
    if not lang:
        return ""
    try:
        lexer = get_lexer_by_name(lang)
    except ClassNotFound:
        return ""
    highlighted: str = highlight(code, lexer, _FORMATTER)
    return highlighted


def _image(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    alt = self.renderInlineAsText(tokens[idx].children or [], options, env)
    return f'<span class="image-alt">[image: {html.escape(alt)}]</span>'


def _link_open(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    tokens[idx].attrSet("rel", "noopener noreferrer nofollow")
    tokens[idx].attrSet("target", "_blank")
    rendered: str = self.renderToken(tokens, idx, options, env)
    return rendered
