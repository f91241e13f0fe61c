"""HTML bodies reduced to plain text. Nothing is executed or fetched: scripts, styles and their content
are dropped, tags are removed, entities decoded. Output length is bounded."""

from __future__ import annotations

import re
from html.parser import HTMLParser

_DROP = frozenset({"script", "style", "head", "title", "iframe", "object", "embed", "template", "noscript", "svg"})
_BREAK = frozenset({"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "hr"})


class _TextExtractor(HTMLParser):
    def __init__(self, limit: int) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.size = 0
        self.limit = limit
        self.skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROP:
            self.skip_depth += 1
        elif tag in _BREAK:
            self._emit("\n")
        elif tag == "a":
            pass

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BREAK:
            self._emit("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROP:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif tag in _BREAK:
            self._emit("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip_depth:
            self._emit(data)

    def _emit(self, text: str) -> None:
        if self.size < self.limit:
            text = text[: self.limit - self.size]
            self.parts.append(text)
            self.size += len(text)


def html_to_text(html: str, *, limit: int = 200_000) -> str:
    """Readable text from ``html``; never raises on malformed markup."""
    parser = _TextExtractor(limit)
    try:
        parser.feed(html[: limit * 4])
        parser.close()
    except Exception:  # noqa: BLE001,S110 (HTMLParser is lenient; belt and braces for hostile input)
        pass
    text = "".join(parser.parts)
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()
