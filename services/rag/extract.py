"""From uploaded bytes to an ExtractedDocument: decide the type by content, then extract text with its structure.

Pure and synchronous (CPU-bound: run it in a worker thread or the ingest job, never on the event loop).
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import PurePath
from typing import Any

from services.rag.documents import CSV, DOCX, HTML, MARKDOWN, PDF, PLAIN, ExtractedDocument, Section, SectionKind
from services.rag.errors import CorruptDocumentError, EmptyDocumentError, UnsupportedTypeError

ProgressCallback = Callable[[int, int], None]
"""Called as ``on_progress(done, total)``: per page for PDFs, per block for DOCX, once for the other types."""

_EXTENSIONS = {
    ".txt": PLAIN, ".text": PLAIN, ".md": MARKDOWN, ".markdown": MARKDOWN, ".html": HTML, ".htm": HTML,
    ".xhtml": HTML, ".csv": CSV, ".tsv": CSV, ".pdf": PDF, ".docx": DOCX,
}  # fmt: skip
_DECLARED = {"text/x-markdown": MARKDOWN, "application/xhtml+xml": HTML, "text/tab-separated-values": CSV}
_TEXT_TYPES = (PLAIN, MARKDOWN, HTML, CSV)
_BINARY_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
    (b"RIFF", "a RIFF media file"), (b"\x1f\x8b", "a gzip archive"), (b"BZh", "a bzip2 archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"), (b"Rar!", "a RAR archive"), (b"\x7fELF", "an executable"),
    (b"\xd0\xcf\x11\xe0", "a legacy Office file (.doc/.xls); save it as .docx"), (b"OggS", "an audio file"),
    (b"fLaC", "an audio file"), (b"SQLite format 3", "a database"),
)  # fmt: skip
_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_MD_MARKERS = (
    re.compile(r"^ {0,3}#{1,6}[ \t]+\S", re.M), re.compile(r"^ {0,3}(```|~~~)", re.M),
    re.compile(r"\[[^\]\n]+\]\([^)\s]+\)"), re.compile(r"^ {0,3}[-*+][ \t]+\S", re.M), re.compile(r"\*\*[^*\n]+\*\*"),
)  # fmt: skip
_HTML_DOCUMENT = re.compile(r"\s*(<!--.*?-->\s*)*(<!doctype\s+html|<html[\s>])", re.I | re.S)
_HTML_SNIFF = re.compile(r"<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>]", re.I)
_HTML_TAGS = re.compile(r"</(p|div|h[1-6]|li|table|span|a)>", re.I)
_SPACES = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


# --- type detection -------------------------------------------------------------------------------------------------


def detect_type(data: bytes, filename: str | None = None, declared: str | None = None) -> str:
    """The media type of ``data``, decided by its content; the name and declared type only break ties among text.

    Raises EmptyDocumentError for empty or blank input and UnsupportedTypeError for anything we cannot extract
    (a PNG renamed ``.txt`` is refused).
    """
    hint = _hint(filename, declared)
    if not data.strip():
        raise EmptyDocumentError("the file is empty")
    if b"%PDF-" in data[:1024]:
        return PDF
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = set(archive.namelist())
        except (zipfile.BadZipFile, OSError, ValueError):
            if hint == DOCX:
                return DOCX  # a damaged Word file: extraction fails with the reason
            raise UnsupportedTypeError("the file is a damaged ZIP archive, not a document") from None
        if "word/document.xml" in names:
            return DOCX
        raise UnsupportedTypeError("the file is a ZIP archive, not a Word document")
    for magic, what in _BINARY_MAGIC:
        if data.startswith(magic):
            raise UnsupportedTypeError(f"the file is {what}, which cannot be indexed")
    text = decode_text(data)
    if _HTML_DOCUMENT.match(text):
        return HTML  # a whole HTML page is HTML whatever its name
    if hint in _TEXT_TYPES and (hint != CSV or _looks_like_csv(text, strict=False)):
        return hint
    if _HTML_SNIFF.search(text[:2048]) or len(_HTML_TAGS.findall(text[:4096])) >= 2:
        return HTML
    if _looks_like_csv(text, strict=True):
        return CSV
    if _ATX.search(text.split("\n", 1)[0]) or sum(bool(marker.search(text)) for marker in _MD_MARKERS) >= 2:
        return MARKDOWN
    return PLAIN


def _hint(filename: str | None, declared: str | None) -> str | None:
    if declared:
        base = declared.split(";", 1)[0].strip().lower()
        base = _DECLARED.get(base, base)
        if base in _TEXT_TYPES or base in (PDF, DOCX):
            return base
    if filename:
        return _EXTENSIONS.get(PurePath(filename).suffix.lower())
    return None


def decode_text(data: bytes) -> str:
    """UTF-8 (or UTF-16 with a BOM, or Windows-1252 as a last resort) with newlines normalised; binary is refused."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise UnsupportedTypeError("the file is not text in a known encoding") from None
    elif b"\x00" in data:
        raise UnsupportedTypeError("the file holds binary data, not text")
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                text = data.decode("cp1252")
            except UnicodeDecodeError:
                raise UnsupportedTypeError("the file is not text in a known encoding") from None
    if len(_CONTROL.findall(text[:8192])) > max(2, len(text[:8192]) // 100):
        raise UnsupportedTypeError("the file holds binary data, not text")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _looks_like_csv(text: str, *, strict: bool) -> bool:
    """Consistent columns (at least two, over at least three rows when only the content speaks)."""
    sample = text[:16384]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        rows = [row for row in csv.reader(io.StringIO(sample), dialect) if row][:50]
    except csv.Error:
        return not strict and bool(text.strip())
    if len(text) > len(sample) and len(rows) > 1:
        rows = rows[:-1]  # the sample may cut the last row short
    widths = {len(row) for row in rows}
    if strict:
        return len(rows) >= 3 and len(widths) == 1 and widths.pop() >= 2
    return bool(rows)


# --- extraction -----------------------------------------------------------------------------------------------------


def extract(data: bytes, media_type: str, *, on_progress: ProgressCallback | None = None) -> ExtractedDocument:
    """Extract ``data`` of a type ``detect_type`` returned. Raises CorruptDocumentError or EmptyDocumentError."""
    extractors: dict[str, Callable[[bytes, ProgressCallback], ExtractedDocument]] = {
        PLAIN: lambda raw, _progress: _plain(decode_text(raw)),
        MARKDOWN: lambda raw, _progress: _markdown(decode_text(raw)),
        HTML: lambda raw, _progress: _html(decode_text(raw)),
        CSV: lambda raw, _progress: _csv(decode_text(raw)),
        PDF: _pdf,
        DOCX: _docx,
    }
    extractor = extractors.get(media_type)
    if extractor is None:
        raise UnsupportedTypeError(f"{media_type} cannot be indexed")
    document = extractor(data, on_progress or (lambda _done, _total: None))
    if not document.text.strip():
        raise EmptyDocumentError("the document has no text to index")
    if media_type not in (PDF, DOCX) and on_progress is not None:
        on_progress(1, 1)
    return document


def extract_pasted(text: str) -> ExtractedDocument:
    """Pasted text: plain paragraphs (or markdown when it looks like markdown)."""
    document = extract(text.encode(), detect_type(text.encode(), None, None))
    return document


class _Builder:
    """Appends blocks to one text, recording each as a section; blocks are separated by ``separator``."""

    def __init__(self, separator: str = "\n\n") -> None:
        self.parts: list[str] = []
        self.length = 0
        self.sections: list[Section] = []
        self.separator = separator
        self.heading: str | None = None
        self.page: int | None = None

    def add(self, kind: SectionKind, text: str, level: int | None = None, separator: str | None = None) -> None:
        text = text.strip()
        if not text:
            return
        if self.parts:
            sep = self.separator if separator is None else separator
            self.parts.append(sep)
            self.length += len(sep)
        if kind == "heading":
            self.heading = _SPACES.sub(" ", text)
        start = self.length
        self.parts.append(text)
        self.length += len(text)
        self.sections.append(Section(kind, start, self.length, self.page, self.heading, level))

    def text(self) -> str:
        return "".join(self.parts)


def _spans(text: str, pattern: str) -> list[tuple[int, int]]:
    """Non-blank stretches of ``text`` between matches of ``pattern``, trimmed, as (start, end)."""
    spans, position = [], 0
    for match in [*re.finditer(pattern, text), None]:
        end = match.start() if match else len(text)
        piece = text[position:end]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            spans.append((position + lead, position + len(piece.rstrip())))
        if match:
            position = match.end()
    return spans


def _plain(text: str) -> ExtractedDocument:
    sections = [Section("paragraph", start, end) for start, end in _spans(text, r"\n[ \t]*\n")]
    return ExtractedDocument(text=text, media_type=PLAIN, sections=sections)


def _markdown(text: str) -> ExtractedDocument:
    """Headings from ATX ``#`` lines (not inside code fences); blocks are blank-line separated, fences kept whole."""
    sections: list[Section] = []
    heading: str | None = None
    title: str | None = None
    block_start: int | None = None
    block_end = 0
    fence: str | None = None
    offset = 0

    def close() -> None:
        nonlocal block_start
        if block_start is not None:
            sections.append(Section("paragraph", block_start, block_end, None, heading))
            block_start = None

    for line in text.split("\n"):
        line_start, line_end = offset, offset + len(line)
        offset = line_end + 1
        fence_match = _FENCE.match(line)
        if fence is None and not fence_match:
            atx = _ATX.match(line)
            if atx:
                close()
                level, heading = len(atx.group(1)), atx.group(2).strip()
                title = title if title is not None else heading
                lead = len(line) - len(line.lstrip())
                sections.append(Section("heading", line_start + lead, line_start + len(line.rstrip()), None, heading,
                                        level))  # fmt: skip
                continue
            if not line.strip():
                close()
                continue
        elif fence_match:
            fence = fence_match.group(1) if fence is None else (None if line.strip().startswith(fence) else fence)
        if block_start is None:
            block_start = line_start + len(line) - len(line.lstrip())
        block_end = line_start + len(line.rstrip()) if line.strip() else block_end
    close()
    return ExtractedDocument(text=text, media_type=MARKDOWN, sections=sections, title=title)


# Not content: code, styling, page chrome (navigation menus, buttons) and the head (its <title> is read apart).
_HTML_SKIP = {"script", "style", "noscript", "template", "svg", "head", "iframe", "object", "nav", "button", "select"}
_HTML_BLOCKS = {
    "p", "div", "li", "ul", "ol", "dl", "dt", "dd", "blockquote", "section", "article", "main", "header", "footer",
    "nav", "aside", "figure", "figcaption", "form", "table", "thead", "tbody", "hr", "br", "address", "details",
    "summary", "caption",
}  # fmt: skip
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}


class _HtmlExtractor(HTMLParser):
    """Blocks from markup: headings, paragraphs, preformatted text, table rows as `` | ``-joined cells."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.builder = _Builder()
        self.buffer: list[str] = []
        self.skip = 0
        self.pre = 0
        self.heading_level: int | None = None
        self.cells: list[str] | None = None
        self.header_row = True
        self.in_title = False
        self.title_parts: list[str] = []

    def flush(self) -> None:
        raw = "".join(self.buffer)
        self.buffer = []
        if self.cells is not None:
            self.buffer = [raw]
            return
        text = raw.strip("\n") if self.pre else _SPACES.sub(" ", raw)
        if self.heading_level is not None:
            self.builder.add("heading", _SPACES.sub(" ", raw), self.heading_level)
        else:
            self.builder.add("paragraph", text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self.in_title = True
        if tag == "body":
            self.skip = 0  # an unclosed <head> (the end tag is optional) must not hide the body
        if tag in _HTML_SKIP:
            self.skip += 1
            return
        if self.skip:
            return
        if tag in _HEADINGS:
            self.flush()
            self.heading_level = _HEADINGS[tag]
        elif tag == "pre":
            self.flush()
            self.pre += 1
        elif tag == "tr":
            self.flush()
            self.cells, self.header_row = [], True
        elif tag in ("td", "th") and self.cells is not None:
            self.buffer = []
            self.header_row = self.header_row and tag == "th"
        elif tag in _HTML_BLOCKS:
            self.flush()

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        if tag in _HTML_SKIP:
            self.skip = max(0, self.skip - 1)
            return
        if self.skip:
            return
        if tag in _HEADINGS and self.heading_level is not None:
            self.flush()
            self.heading_level = None
        elif tag == "pre":
            self.flush()
            self.pre = max(0, self.pre - 1)
        elif tag in ("td", "th") and self.cells is not None:
            self.cells.append(_SPACES.sub(" ", "".join(self.buffer)).strip())
            self.buffer = []
        elif tag == "tr" and self.cells is not None:
            cells, self.cells = self.cells, None
            self.buffer = []
            kind: SectionKind = "table_header" if self.header_row else "table_row"
            self.builder.add(kind, " | ".join(cells), separator="\n")
        elif tag in _HTML_BLOCKS:
            self.flush()

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title_parts.append(data)
        if not self.skip:
            self.buffer.append(data)


def _html(text: str) -> ExtractedDocument:
    parser = _HtmlExtractor()
    parser.feed(text)
    parser.close()
    parser.cells = None
    parser.heading_level = None
    parser.flush()
    title = _SPACES.sub(" ", "".join(parser.title_parts)).strip() or None
    if title is None:
        title = next((s.heading for s in parser.builder.sections if s.kind == "heading"), None)
    return ExtractedDocument(parser.builder.text(), HTML, parser.builder.sections, title=title)


def _csv(text: str) -> ExtractedDocument:
    """One line per row (newlines in cells become spaces) in the file's delimiter; the first row is the header."""
    try:
        dialect: Any = csv.Sniffer().sniff(text[:16384], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    builder = _Builder(separator="\n")
    out = io.StringIO()
    writer = csv.writer(out, delimiter=dialect.delimiter, quotechar='"', lineterminator="\n")
    try:
        rows = [row for row in csv.reader(io.StringIO(text), dialect) if any(cell.strip() for cell in row)]
    except csv.Error as exc:
        raise CorruptDocumentError(f"the CSV cannot be read: {exc}") from None
    for index, row in enumerate(rows):
        out.seek(0)
        out.truncate()
        writer.writerow([cell.replace("\n", " ") for cell in row])
        builder.add("table_header" if index == 0 else "table_row", out.getvalue())
    return ExtractedDocument(builder.text(), CSV, builder.sections)


def _pdf(data: bytes, on_progress: ProgressCallback) -> ExtractedDocument:
    """Text per page (a page section each, paragraphs inside); encrypted or damaged files get a plain reason."""
    from pypdf import PdfReader

    if b"%%EOF" not in data[-65536:]:
        raise CorruptDocumentError("the PDF is damaged: it is truncated (no end-of-file marker)")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                opened = bool(reader.decrypt(""))
            except Exception:  # an unsupported cipher or a broken encryption dictionary
                opened = False
            if not opened:
                raise CorruptDocumentError("the PDF is encrypted (password protected)")
        total = len(reader.pages)
        builder = _Builder()
        page_sections: list[Section] = []
        for number, page in enumerate(reader.pages, start=1):
            builder.page = number
            first = len(builder.sections)
            for paragraph in re.split(r"\n[ \t]*\n", page.extract_text() or ""):
                builder.add("paragraph", paragraph, separator="\n\n" if builder.sections[first:] else "\n\n\f")
            blocks = builder.sections[first:]
            if blocks:
                page_sections.append(Section("page", blocks[0].start, blocks[-1].end, number))
            on_progress(number, total)
        metadata = reader.metadata
        title = str(metadata.title).strip() if metadata is not None and metadata.title else None
    except CorruptDocumentError:
        raise
    except Exception as exc:  # pypdf raises many kinds on damaged input
        raise CorruptDocumentError(f"the PDF is damaged: {exc}") from None
    if not builder.sections:
        raise EmptyDocumentError("the PDF has no text layer (scanned pages need OCR first)")
    sections = sorted([*page_sections, *builder.sections], key=lambda s: (s.start, s.kind != "page"))
    return ExtractedDocument(builder.text(), PDF, sections, pages=total, title=title or None)


def _docx(data: bytes, on_progress: ProgressCallback) -> ExtractedDocument:
    """Headings by paragraph style (Title, Heading 1..9), paragraphs, and table rows as `` | ``-joined cells."""
    import docx
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
        items = list(document.iter_inner_content())
        builder = _Builder()
        title = (document.core_properties.title or "").strip() or None
        for index, item in enumerate(items, start=1):
            if isinstance(item, Table):
                for row_index, row in enumerate(item.rows):
                    cells: list[str] = []
                    for cell in row.cells:
                        value = _SPACES.sub(" ", cell.text).strip()
                        if not cells or value != cells[-1]:  # merged cells repeat their text
                            cells.append(value)
                    kind: SectionKind = "table_header" if row_index == 0 else "table_row"
                    builder.add(kind, " | ".join(cells), separator="\n" if row_index else "\n\n")
            else:
                style = (item.style.name if item.style is not None else "") or ""
                level = 0 if style == "Title" else _heading_level(style)
                if level is not None:
                    builder.add("heading", item.text, level)
                    title = title or (builder.heading if level <= 1 else None)
                else:
                    builder.add("paragraph", item.text)
            on_progress(index, len(items))
    except Exception as exc:  # zip, XML and package errors all mean the same thing to the user
        raise CorruptDocumentError(f"the DOCX is damaged: {exc}") from None
    return ExtractedDocument(builder.text(), DOCX, builder.sections, title=title)


def _heading_level(style: str) -> int | None:
    match = re.fullmatch(r"Heading ([1-9])", style)
    return int(match.group(1)) if match else None
