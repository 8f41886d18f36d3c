"""A short extract of a passage around the words a query asked for, with those words marked."""

from __future__ import annotations

import re

from services.db.fulltext import STOP_WORDS, parse_query

SNIPPET_CHARS = 240


def query_terms(query: str) -> tuple[str, ...]:
    """The words worth marking: the query's words without common ones (all of them if only common ones)."""
    terms = parse_query(query)
    return tuple(term for term in terms if term not in STOP_WORDS) or terms


def find_marks(text: str, terms: tuple[str, ...]) -> list[tuple[int, int]]:
    """Where words starting with any of ``terms`` occur in ``text`` (as the full-text index matches: by prefix)."""
    if not terms:
        return []
    pattern = re.compile(r"(?<![^\W_])(?:" + "|".join(re.escape(term) for term in terms) + r")[^\W_]*", re.I)
    return [match.span() for match in pattern.finditer(text)]


def snippet(text: str, query: str, *, size: int = SNIPPET_CHARS) -> tuple[str, list[tuple[int, int]]]:
    """The ``size`` characters of ``text`` holding the most distinct query words (the start if none), cut at
    word boundaries, with ``…`` where it was cut; and the [start, end) of each marked word in the snippet."""
    marks = find_marks(text, query_terms(query))
    start = 0
    if marks and len(text) > size:
        best = (-1, 0)
        for first, (begin, _end) in enumerate(marks):
            words = {text[b:e].lower() for b, e in marks[first:] if e <= begin + size}
            if len(words) > best[0]:
                best = (len(words), begin)
        start = max(0, best[1] - size // 5)
    end = min(len(text), start + size)
    if start > 0:
        space = text.find(" ", start, start + 30)
        start = space + 1 if space != -1 else start
    if end < len(text):
        space = text.rfind(" ", end - 30, end)
        end = space if space > start else end
    body = " ".join(text[start:end].split(" "))
    lead = "…" if start > 0 else ""
    tail = "…" if end < len(text) else ""
    shift = len(lead) - start
    inside = [(b + shift, e + shift) for b, e in marks if b >= start and e <= end]
    return lead + body + tail, inside
