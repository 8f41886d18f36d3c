"""Real documents made with real libraries, for the extraction and chunking tests."""

from __future__ import annotations

import io

import docx
from fpdf import FPDF
from pypdf import PdfReader, PdfWriter

PAGE7_SENTENCE = "The heron ledger of Quillbrook records seventeen copper bells."

FILLER = (
    "This page describes the ordinary running of the archive. Visitors sign the book at the door, and the keeper "
    "notes the hour. Nothing on this page is remarkable; it exists so that every page carries enough text to be "
    "chunked on its own. "
)


def ten_page_pdf() -> bytes:
    """Ten pages of filler; the unique sentence is only on page 7."""
    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    pdf.set_title("Archive handbook")
    for number in range(1, 11):
        pdf.add_page()
        pdf.multi_cell(0, 6, f"Page {number} of the archive handbook.")
        pdf.ln(4)
        body = FILLER * 3
        if number == 7:
            body = FILLER + PAGE7_SENTENCE + " " + FILLER
        pdf.multi_cell(0, 6, body)
    return bytes(pdf.output())


def encrypted_pdf() -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(ten_page_pdf())))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def docx_with_headings_and_table() -> bytes:
    document = docx.Document()
    document.add_heading("Field guide", level=0)
    document.add_heading("Installation", level=1)
    document.add_paragraph("Unpack the kit on a dry table. Keep the lens cap on until the tripod stands.")
    document.add_heading("Birds", level=1)
    document.add_paragraph("The table lists what we saw on the marsh.")
    table = document.add_table(rows=3, cols=2)
    for row, (name, count) in zip(table.rows, [("Bird", "Count"), ("Heron", "4"), ("Kingfisher", "1")], strict=True):
        row.cells[0].text, row.cells[1].text = name, count
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def png_bytes() -> bytes:
    """A real (tiny) PNG image: signature, IHDR, IDAT, IEND."""
    import struct
    import zlib

    def part(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + part(b"IHDR", header)
        + part(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + part(b"IEND", b"")
    )


def short_paged_pdf(pages: int = 8, special: dict[int, str] | None = None) -> bytes:
    """A PDF of ``pages`` short pages (one small chunk each, cheap to embed); ``special`` adds a sentence to a page."""
    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    pdf.set_title("Survey notes")
    for number in range(1, pages + 1):
        pdf.add_page()
        pdf.multi_cell(0, 6, f"Page {number} of the survey notes. The surveyor walked the eastern boundary again.")
        if special and number in special:
            pdf.ln(4)
            pdf.multi_cell(0, 6, special[number])
    return bytes(pdf.output())


def zip_not_docx() -> bytes:
    """A valid ZIP archive (spreadsheet-like parts, no ``word/document.xml``): not a Word document."""
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
    return out.getvalue()
