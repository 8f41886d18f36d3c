"""The labelled question set for the RAG retrieval benchmark: questions over Debian's Python documentation.

Each question names the page (relative to the HTML root) and a short verbatim passage of that page that answers
it; a retrieved chunk counts as a hit when it holds the passage. Pages are read through the ingestion extractor,
so the benchmark judges the same text ingestion indexes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from services.rag.documents import HTML
from services.rag.extract import extract

DATA = Path(__file__).with_name("data") / "rag_questions.jsonl"
DOCS_PACKAGE = "python3.11-doc"
HTML_ROOTS = (Path("/usr/share/doc/python3.11/html"), Path("/usr/share/doc/python3.11-doc/html"))
_SPACES = re.compile(r"\s+")


class DocsMissingError(RuntimeError):
    """The Python documentation the questions refer to is not installed."""


@dataclass(frozen=True, slots=True)
class Question:
    """One labelled question: ``answer`` is a passage that appears exactly once in the text of ``doc``."""

    id: str
    question: str
    doc: str
    answer: str


def load_questions(path: Path = DATA) -> list[Question]:
    """Every question in the set, in file order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [Question(**json.loads(line)) for line in lines if line.strip()]


def html_root() -> Path:
    """Where the HTML docs live; raises DocsMissingError naming the package (installed by scripts/setup)."""
    for root in HTML_ROOTS:
        if (root / "index.html").is_file():
            return root
    raise DocsMissingError(
        f"the Python documentation is not installed (looked in {', '.join(map(str, HTML_ROOTS))}): "
        f"run scripts/setup, or: apt-get install --no-install-recommends {DOCS_PACKAGE}"
    )


def page_text(path: str | Path) -> str:
    """The visible text of a page (relative to html_root(), or absolute), as ingestion extracts it."""
    page = html_root() / path
    return extract(page.read_bytes(), HTML).text


def normalise(text: str) -> str:
    """Whitespace collapsed to single spaces, so a passage matches however the extractor broke its lines."""
    return _SPACES.sub(" ", text).strip()
