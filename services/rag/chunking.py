"""Chunks that follow the document: a new chunk at every heading and page, long blocks cut at sentence ends, overlap.

The offsets contract: ``chunk.text == chunk.prefix + document.text[chunk.start:chunk.end]``. ``prefix`` is empty
except for a chunk that starts inside a table (a CSV file, a DOCX or HTML table) after its header row: then it is
the header line plus a newline, repeated so every group of rows says what its columns mean. A citation therefore
points at ``document.text[start:end]`` and the prefix is never part of the cited span.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.rag.documents import ExtractedDocument, Section

_SENTENCE_END = re.compile(r"[.!?…][\"')\]»”’]*(?=\s)")
_AFTER_SENTENCE = re.compile(r"[.!?…][\"')\]»”’]*$")


@dataclass(frozen=True, slots=True)
class Chunk:
    """One retrievable passage. ``page`` (PDF, 1-based) and ``heading`` say where it is; see the module docstring."""

    ordinal: int
    text: str
    start: int
    end: int
    page: int | None
    heading: str | None
    prefix: str = ""


@dataclass(frozen=True, slots=True)
class _Piece:
    start: int
    end: int
    kind: str
    page: int | None
    heading: str | None
    table_header: str | None


def chunk(document: ExtractedDocument, *, target_chars: int = 1200, overlap_chars: int = 150) -> list[Chunk]:
    """Split ``document`` into chunks of at most ``target_chars`` of new text plus up to ``overlap_chars`` of overlap.

    A chunk never spans two pages or two headed sections; consecutive chunks of one section overlap (starting at a
    sentence or word start), except where a chunk starts with table rows: rows are whole and not repeated.
    """
    if target_chars < 1 or not 0 <= overlap_chars < target_chars:
        raise ValueError("need target_chars >= 1 and 0 <= overlap_chars < target_chars")
    text = document.text
    chunks: list[Chunk] = []
    blocks = document.blocks()
    headers: dict[Section, str | None] = {}
    header: str | None = None
    for block in blocks:
        header = text[block.start : block.end] if block.kind == "table_header" else (
            header if block.kind == "table_row" else None)  # fmt: skip
        headers[block] = header if block.kind == "table_row" else None
    for segment in _segments(blocks):
        pieces = [piece for block in segment for piece in _split(text, block, target_chars, headers[block])]
        previous: Chunk | None = None
        group: list[_Piece] = []
        for piece in [*pieces, None]:
            if piece is not None and (not group or piece.end - group[0].start <= target_chars):
                group.append(piece)
                continue
            previous = _emit(text, group, previous, overlap_chars, chunks)
            group = [piece] if piece is not None else []
    return chunks


def _segments(blocks: list[Section]) -> list[list[Section]]:
    """Runs of blocks one chunk may join: a heading or a new page starts a run (consecutive headings stay together)."""
    segments: list[list[Section]] = []
    for block in blocks:
        current = segments[-1] if segments else None
        new_page = current is not None and block.page != current[-1].page
        only_headings = current is not None and all(item.kind == "heading" for item in current)
        if current is None or new_page or (block.kind == "heading" and not only_headings):
            segments.append([block])
        else:
            current.append(block)
    return segments


def _split(text: str, block: Section, target: int, header: str | None) -> list[_Piece]:
    """A block as pieces of at most ``target`` chars, cut after a sentence end, else at a space, else anywhere."""
    pieces: list[_Piece] = []
    start, end = block.start, block.end
    while end - start > target:
        limit = start + target
        floor = start + target // 3
        window = text[start : limit + 1]
        cut = max((start + m.end() for m in _SENTENCE_END.finditer(window) if floor < start + m.end() <= limit),
                  default=None)  # fmt: skip
        if cut is None:
            space = text.rfind(" ", floor, limit + 1)
            cut = space if space > floor else limit
        piece_end = cut
        while piece_end > start and text[piece_end - 1].isspace():
            piece_end -= 1
        pieces.append(_Piece(start, piece_end, block.kind, block.page, block.heading, header))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if end > start:
        pieces.append(_Piece(start, end, block.kind, block.page, block.heading, header))
    return pieces


def _emit(text: str, group: list[_Piece], previous: Chunk | None, overlap: int, chunks: list[Chunk]) -> Chunk | None:
    if not group:
        return previous
    first, last = group[0], group[-1]
    start = first.start
    prefix = ""
    if first.kind == "table_row":
        prefix = first.table_header + "\n" if first.table_header else ""
    elif previous is not None and overlap:
        start = _overlap_start(text, max(previous.start + 1, first.start - overlap), first.start)
    made = Chunk(len(chunks), prefix + text[start : last.end], start, last.end, first.page, last.heading, prefix)
    chunks.append(made)
    return made


def _overlap_start(text: str, low: int, high: int) -> int:
    """The earliest sentence start in ``[low, high)``, else the earliest word start, else ``high`` (no overlap)."""
    word_starts = [p for p in range(max(low, 1), high) if text[p - 1].isspace() and not text[p].isspace()]
    for position in word_starts:
        if _AFTER_SENTENCE.search(text[max(0, position - 8) : position].rstrip()):
            return position
    return word_starts[0] if word_starts else high
