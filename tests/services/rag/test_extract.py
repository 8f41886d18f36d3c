"""Type detection by content and extraction of every supported type, from real files made here."""

from __future__ import annotations

import io
import zipfile

import pytest

from services.errors import UnsupportedMediaTypeError, ValidationFailedError
from services.rag.documents import CSV, DOCX, HTML, MARKDOWN, PDF, PLAIN
from services.rag.errors import CorruptDocumentError, EmptyDocumentError, UnsupportedTypeError
from services.rag.extract import detect_type, extract, extract_pasted
from tests.services.rag.files import (
    PAGE7_SENTENCE,
    docx_with_headings_and_table,
    encrypted_pdf,
    png_bytes,
    ten_page_pdf,
)

HTML_PAGE = b"""<!DOCTYPE html><html><head><title>Tide tables</title><style>body { color: red }</style>
<script>var secret = "do not index";</script></head>
<body><h1>Tides</h1><p>High water comes twice a day.</p><h2>Spring tides</h2>
<p>They follow the  new and
 full moon.</p><noscript>enable scripts</noscript>
<table><tr><th>Port</th><th>Range</th></tr><tr><td>Brest</td><td>7 m</td></tr></table></body></html>"""

CSV_FILE = b'city,country,population\nLyon,France,522000\nGhent,Belgium,265000\n"Porto, city",Portugal,232000\n'

MARKDOWN_FILE = b"""# Setup guide

Install the tool first.

## Installation

Run the installer.

```
# not a heading inside a fence
make install
```

## Usage
Call it with a file.
"""


def test_pdf_is_detected_by_content_and_extracted_per_page_with_progress() -> None:
    data = ten_page_pdf()
    assert detect_type(data, "handbook.txt", "text/plain") == PDF  # the content wins over the name
    progress: list[tuple[int, int]] = []
    document = extract(data, PDF, on_progress=lambda done, total: progress.append((done, total)))
    assert document.pages == 10 and document.title == "Archive handbook"
    assert progress == [(n, 10) for n in range(1, 11)]
    pages = [s for s in document.sections if s.kind == "page"]
    assert [s.page for s in pages] == list(range(1, 11))
    span = document.page_span(7)
    assert span is not None
    assert PAGE7_SENTENCE in " ".join(document.text[span[0] : span[1]].split())
    for number in (1, 6, 8, 10):
        page_span = document.page_span(number)
        assert page_span is not None
        assert PAGE7_SENTENCE not in " ".join(document.text[page_span[0] : page_span[1]].split())
    assert all(s.page is not None for s in document.sections)


def test_encrypted_pdf_is_refused_with_a_reason() -> None:
    data = encrypted_pdf()
    assert detect_type(data, "secret.pdf", None) == PDF
    with pytest.raises(CorruptDocumentError, match="the PDF is encrypted"):
        extract(data, PDF)


def test_truncated_and_garbled_pdfs_are_refused_with_a_reason() -> None:
    data = ten_page_pdf()
    with pytest.raises(CorruptDocumentError, match="the PDF is damaged"):
        extract(data[: len(data) // 2], detect_type(data[: len(data) // 2], "cut.pdf", None))
    garbled = data[:200] + bytes(range(256)) * 4 + b"\n%%EOF\n"
    with pytest.raises(CorruptDocumentError, match="the PDF is damaged") as caught:
        extract(garbled, PDF)
    assert isinstance(caught.value, ValidationFailedError) and caught.value.code == "corrupt_document"


def test_docx_headings_paragraphs_and_table_rows() -> None:
    data = docx_with_headings_and_table()
    assert detect_type(data, "guide.bin", None) == DOCX
    document = extract(data, DOCX)
    assert document.title == "Field guide"
    headings = [(s.heading, s.level) for s in document.sections if s.kind == "heading"]
    assert headings == [("Field guide", 0), ("Installation", 1), ("Birds", 1)]
    rows = [document.text[s.start : s.end] for s in document.sections if s.kind in ("table_header", "table_row")]
    assert rows == ["Bird | Count", "Heron | 4", "Kingfisher | 1"]
    paragraph = next(s for s in document.sections if "tripod" in document.text[s.start : s.end])
    assert paragraph.kind == "paragraph" and paragraph.heading == "Installation"
    span = document.heading_span("Installation")
    assert span is not None
    section = document.text[span[0] : span[1]]
    assert "tripod" in section and "Heron" not in section


def test_damaged_docx_is_refused_with_a_reason() -> None:
    data = docx_with_headings_and_table()
    cut = data[: len(data) // 2]
    assert detect_type(cut, "guide.docx", None) == DOCX
    with pytest.raises(CorruptDocumentError, match="the DOCX is damaged"):
        extract(cut, DOCX)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("word/document.xml", "<not-word/>")
    with pytest.raises(CorruptDocumentError, match="the DOCX is damaged"):
        extract(archive.getvalue(), detect_type(archive.getvalue(), "x.docx", None))


def test_html_drops_scripts_and_styles_and_keeps_headings_paragraphs_and_rows() -> None:
    assert detect_type(HTML_PAGE, "page.txt", None) == HTML
    document = extract(HTML_PAGE, HTML)
    assert document.title == "Tide tables"
    for hidden in ("do not index", "color: red", "enable scripts"):
        assert hidden not in document.text
    blocks = [(s.kind, document.text[s.start : s.end], s.heading) for s in document.sections]
    assert blocks == [
        ("heading", "Tides", "Tides"),
        ("paragraph", "High water comes twice a day.", "Tides"),
        ("heading", "Spring tides", "Spring tides"),
        ("paragraph", "They follow the new and full moon.", "Spring tides"),
        ("table_header", "Port | Range", "Spring tides"),
        ("table_row", "Brest | 7 m", "Spring tides"),
    ]
    assert [s.level for s in document.sections if s.kind == "heading"] == [1, 2]


def test_csv_rows_with_the_header_kept() -> None:
    assert detect_type(CSV_FILE, None, None) == CSV
    assert detect_type(CSV_FILE, "cities.csv", "text/csv; charset=utf-8") == CSV
    document = extract(CSV_FILE, CSV)
    kinds = [s.kind for s in document.sections]
    assert kinds == ["table_header", "table_row", "table_row", "table_row"]
    assert document.text.split("\n")[0] == "city,country,population"
    assert document.text.split("\n")[3] == '"Porto, city",Portugal,232000'


def test_markdown_headings_outside_code_fences() -> None:
    assert detect_type(MARKDOWN_FILE, None, None) == MARKDOWN
    assert detect_type(MARKDOWN_FILE, "notes.md", None) == MARKDOWN
    document = extract(MARKDOWN_FILE, MARKDOWN)
    assert document.text == MARKDOWN_FILE.decode()  # offsets point into the file as written
    assert document.title == "Setup guide"
    assert [(s.heading, s.level) for s in document.sections if s.kind == "heading"] == [
        ("Setup guide", 1), ("Installation", 2), ("Usage", 2)
    ]  # fmt: skip
    fence = next(s for s in document.sections if "make install" in document.text[s.start : s.end])
    assert fence.kind == "paragraph" and fence.heading == "Installation"
    fenced = document.text[fence.start : fence.end]
    assert fenced.startswith("```") and fenced.endswith("```")


def test_plain_and_pasted_text_are_paragraphs() -> None:
    data = b"First paragraph, one line.\r\n\r\nSecond paragraph\nspans two lines.\n"
    assert detect_type(data, "notes.txt", None) == PLAIN
    document = extract(data, PLAIN)
    assert [document.text[s.start : s.end] for s in document.sections] == [
        "First paragraph, one line.", "Second paragraph\nspans two lines."
    ]  # fmt: skip
    pasted = extract_pasted("Just a thought I pasted.\n\nAnd another.")
    assert pasted.media_type == PLAIN and len(pasted.sections) == 2


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (png_bytes(), "photo.txt"),
        (png_bytes(), "photo.png"),
        (b"PK\x03\x04" + b"\x00" * 40, "archive.txt"),
        (b"\x7fELF\x02\x01\x01" + b"\x00" * 60, "tool.md"),
        (bytes(range(256)) * 8, "noise.csv"),
    ],
)
def test_binary_content_is_refused_whatever_its_name(data: bytes, name: str) -> None:
    with pytest.raises(UnsupportedTypeError) as caught:
        detect_type(data, name, "text/plain")
    assert isinstance(caught.value, UnsupportedMediaTypeError) and caught.value.code == "unsupported_media_type"


def test_a_real_zip_that_is_not_a_word_document_is_refused() -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("readme.txt", "hello")
    with pytest.raises(UnsupportedTypeError, match="ZIP archive"):
        detect_type(archive.getvalue(), "readme.txt", None)


@pytest.mark.parametrize("data", [b"", b"   \n\t  \n"])
def test_empty_input_is_refused(data: bytes) -> None:
    with pytest.raises(EmptyDocumentError):
        detect_type(data, "empty.txt", None)
    with pytest.raises(EmptyDocumentError):
        extract(data, PLAIN)


def test_unknown_media_type_cannot_be_extracted() -> None:
    with pytest.raises(UnsupportedTypeError):
        extract(b"hello", "image/png")


def test_the_web_layer_maps_the_ingestion_errors_to_415_and_422() -> None:
    from agent_ui.errors import status_for

    assert status_for(UnsupportedTypeError("a PNG image")) == 415
    assert status_for(CorruptDocumentError("the PDF is encrypted")) == 422
    assert status_for(EmptyDocumentError("the file is empty")) == 422


def test_html_without_a_closing_head_tag_keeps_its_body_and_drops_navigation() -> None:
    page = b"<html><head><title>Short</title><body><nav><a href='/'>Home</a></nav><p>Body text stays.</p></body>"
    document = extract(page, detect_type(page, None, None))
    assert document.text == "Body text stays." and document.title == "Short"
