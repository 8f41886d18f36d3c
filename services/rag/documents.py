"""The extracted document: one plain text plus sections that say where each page, heading and block lies in it.

Every offset is a character index into ``ExtractedDocument.text``, so a chunk (and through it a citation) can
name its page or heading and a viewer can open exactly that span.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PLAIN = "text/plain"
MARKDOWN = "text/markdown"
HTML = "text/html"
CSV = "text/csv"
PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
MEDIA_TYPES = (PLAIN, MARKDOWN, HTML, CSV, PDF, DOCX)

SectionKind = Literal["page", "heading", "paragraph", "table_header", "table_row"]
# "page" is a container (PDF only); the other kinds are the blocks the chunker packs, in document order.
BLOCK_KINDS: frozenset[str] = frozenset({"heading", "paragraph", "table_header", "table_row"})


@dataclass(frozen=True, slots=True)
class Section:
    """A span ``text[start:end]`` of the document.

    ``page`` is 1-based (PDF only, else None). ``heading`` is the text of the nearest heading above the span (for a
    heading section, its own text); ``level`` is a heading's depth (0 for a title, 1..6 for h1..h6), None otherwise.
    """

    kind: SectionKind
    start: int
    end: int
    page: int | None = None
    heading: str | None = None
    level: int | None = None


@dataclass(frozen=True, slots=True)
class ExtractedDocument:
    """What extraction yields. ``pages`` is the page count for PDFs, None for formats without pages."""

    text: str
    media_type: str
    sections: list[Section]
    pages: int | None = None
    title: str | None = None

    def blocks(self) -> list[Section]:
        """The sections the chunker packs (everything but page containers), in document order."""
        return [section for section in self.sections if section.kind in BLOCK_KINDS]

    def page_span(self, page: int) -> tuple[int, int] | None:
        """Where a PDF page lies in ``text``, to open a citation at its page; None if there is no such page."""
        for section in self.sections:
            if section.kind == "page" and section.page == page:
                return section.start, section.end
        return None

    def heading_span(self, heading: str) -> tuple[int, int] | None:
        """From a heading to the next heading of the same or a higher level: the section a citation opens."""
        found: Section | None = None
        for section in self.sections:
            if section.kind != "heading":
                continue
            if found is None:
                if section.heading == heading:
                    found = section
            elif (section.level or 0) <= (found.level or 0):
                return found.start, section.start
        return (found.start, len(self.text)) if found is not None else None
