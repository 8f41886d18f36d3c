"""The chat page's browser half (auto-scroll, code-block boxes, copy with a toast) and the markdown it decorates."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from nicegui import ui

from agent_ui.components.citations import link_markers

STATIC = Path(__file__).resolve().parents[1] / "static"
# An opening or closing fence (``` or ~~~) and, on an opening one, the language that follows it.
FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([^\s`]*)")
PRE = re.compile(r"<pre(?=[\s>])")


@cache
def _asset(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


def add_chat_assets() -> None:
    """Inline (the page's policy allows inline code, not other origins), once per page."""
    ui.add_head_html(f"<style>{_asset('chat.css')}</style>\n<script>{_asset('chat.js')}</script>")


def fence_languages(text: str) -> list[str]:
    """The language of each closed fenced block, in order ("" when none is given); an unclosed one (still
    streaming) is not a block yet."""
    languages: list[str] = []
    opening: tuple[str, str] | None = None
    for line in text.splitlines():
        match = FENCE.match(line)
        if match is None:
            continue
        fence, info = match.groups()
        if opening is None:
            opening = (fence, info)
        elif fence[0] == opening[0][0] and len(fence) >= len(opening[0]) and not info:
            languages.append(opening[1])
            opening = None
    return languages


def label_code_blocks(html: str, languages: list[str]) -> str:
    """Mark each ``<pre>`` with its fence's language for the browser's code box; when the blocks and fences do not
    pair up (an indented code block), leave them unlabelled rather than mislabel them."""
    if not languages or len(PRE.findall(html)) != len(languages):
        return html
    names = iter(languages)
    return PRE.sub(lambda _: f'<pre data-lang="{_attribute(next(names))}"', html)


def _attribute(value: str) -> str:
    return re.sub(r"[^\w+#.-]", "", value)[:32]


class ChatMarkdown(ui.markdown):
    """Markdown whose fenced code blocks carry their language (``data-lang``), which codehilite's HTML drops, and
    whose citation markers (``[1]``) of known sources are buttons that open them."""

    def __init__(self, content: str = "", *, citations: Mapping[int, str] | None = None) -> None:
        self.citations = dict(citations or {})  # n -> what the source is called; read while rendering below
        super().__init__(content)
        self.classes("chat-md")

    def set_citations(self, citations: Mapping[int, str]) -> None:
        if dict(citations) != self.citations:
            self.citations = dict(citations)
            self._handle_content_change(self.content)

    def _handle_content_change(self, content: str) -> None:
        super()._handle_content_change(content)
        html = str(self._props.get("innerHTML") or "")
        labelled = link_markers(label_code_blocks(html, fence_languages(content)), self.citations)
        if labelled != html:
            self._props["innerHTML"] = labelled
