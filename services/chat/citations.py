"""A turn's sources, numbered for the answer to cite as [n], and which source an answer that cites none drew on."""

from __future__ import annotations

import re

from services.tools import Citation

_MARKER = re.compile(r"\[(\d{1,3})(?:\s*[,;]\s*\d{1,3})*\]")
_NUMBER = re.compile(r"\d{1,3}")
_WORD = re.compile(r"[^\W_]{3,}|\d+")
# Below this share of the answer's words found in a source, the answer did not draw on it (or says it knows not).
MIN_OVERLAP = 0.35


def cited_numbers(text: str) -> set[int]:
    """The numbers an answer cites: ``[1]``, ``[2, 3]``."""
    return {int(n) for marker in _MARKER.finditer(text) for n in _NUMBER.findall(marker.group(0))}


def _words(text: str) -> set[str]:
    return {word.lower() for word in _WORD.findall(text)}


class Citations:
    """One number per source, in the order the turn's tools found them."""

    def __init__(self) -> None:
        self._numbers: dict[str, int] = {}
        self._sources: list[Citation] = []

    @property
    def numbered(self) -> list[Citation]:
        return list(self._sources)

    def number(self, citation: Citation) -> tuple[int, bool]:
        """The source's number, and whether it is new to this turn."""
        if (known := self._numbers.get(citation.key)) is not None:
            return known, False
        self._sources.append(citation)
        self._numbers[citation.key] = len(self._sources)
        return len(self._sources), True

    def best_match(self, answer: str) -> int | None:
        """The source holding most of the answer's words, when it holds enough of them to have been its source."""
        words = _words(answer)
        if not words:
            return None
        best, share = None, 0.0
        for n, source in enumerate(self._sources, 1):
            found = len(words & _words(source.text or " ".join(str(v) for v in source.data.values())))
            if found / len(words) > share:
                best, share = n, found / len(words)
        return best if share >= MIN_OVERLAP else None
