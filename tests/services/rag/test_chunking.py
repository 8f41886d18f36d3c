"""Chunks follow the document: pages, headings, sentences, table rows; offsets round-trip; overlap; bounded size."""

from __future__ import annotations

from itertools import pairwise

import pytest

from services.rag.chunking import Chunk, chunk
from services.rag.documents import CSV, DOCX, MARKDOWN, PDF, PLAIN, ExtractedDocument
from services.rag.extract import extract
from tests.services.rag.files import PAGE7_SENTENCE, docx_with_headings_and_table, ten_page_pdf


def _check_invariants(document: ExtractedDocument, chunks: list[Chunk], target: int, overlap: int) -> None:
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    for item in chunks:
        assert item.text == item.prefix + document.text[item.start : item.end]
        assert item.end - item.start <= target + overlap
        assert item.text.strip() == item.text and item.text
    covered = [False] * len(document.text)
    for item in chunks:
        covered[item.start : item.end] = [True] * (item.end - item.start)
    for block in document.blocks():  # every visible character of every block lands in some chunk
        assert all(covered[i] for i in range(block.start, block.end) if not document.text[i].isspace())


@pytest.fixture(scope="module")
def pdf_document() -> ExtractedDocument:
    return extract(ten_page_pdf(), PDF)


@pytest.mark.parametrize(("target", "overlap"), [(1200, 150), (300, 60), (120, 0)])
def test_pdf_chunks_never_cross_a_page_and_the_page7_sentence_says_page_7(
    pdf_document: ExtractedDocument, target: int, overlap: int
) -> None:
    chunks = chunk(pdf_document, target_chars=target, overlap_chars=overlap)
    _check_invariants(pdf_document, chunks, target, overlap)
    for item in chunks:
        span = pdf_document.page_span(item.page or 0)
        assert span is not None and span[0] <= item.start and item.end <= span[1]
    assert {c.page for c in chunks} == set(range(1, 11))
    holding = [c for c in chunks if "seventeen copper bells" in c.text]
    assert holding and {c.page for c in holding} == {7}
    if target >= 300:
        assert any(PAGE7_SENTENCE in " ".join(c.text.split()) for c in holding)


def test_consecutive_chunks_of_one_section_overlap_at_a_word_start() -> None:
    sentences = [f"Sentence number {n} talks about the weather in town {n}." for n in range(40)]
    document = extract(" ".join(sentences).encode(), PLAIN)
    chunks = chunk(document, target_chars=300, overlap_chars=80)
    _check_invariants(document, chunks, 300, 80)
    assert len(chunks) > 3
    for before, after in pairwise(chunks):
        assert after.start < before.end <= after.start + 80 + 1  # the overlap is real and bounded
        assert document.text[after.start - 1].isspace()
    for item in chunks[:-1]:
        assert item.text.endswith(".")  # long paragraphs are cut after a sentence


def test_without_overlap_chunks_tile_the_text() -> None:
    document = extract(("word " * 1000).encode(), PLAIN)
    chunks = chunk(document, target_chars=200, overlap_chars=0)
    _check_invariants(document, chunks, 200, 0)
    for before, after in pairwise(chunks):
        assert before.end < after.start


def test_a_heading_starts_a_chunk_and_is_kept_on_it() -> None:
    text = "# Guide\n\nIntro words.\n\n## Installation\n\n" + "Install step. " * 60 + "\n\n## Usage\n\nRun it.\n"
    document = extract(text.encode(), MARKDOWN)
    chunks = chunk(document, target_chars=250, overlap_chars=40)
    _check_invariants(document, chunks, 250, 40)
    assert chunks[0].text.startswith("# Guide") and chunks[0].heading == "Guide"
    install = [c for c in chunks if c.heading == "Installation"]
    assert len(install) > 2 and install[0].text.startswith("## Installation")
    assert all("Usage" not in c.text and "Intro" not in c.text for c in install)  # no chunk straddles sections
    usage = [c for c in chunks if c.heading == "Usage"]
    assert [c.text for c in usage] == ["## Usage\n\nRun it."]


def test_consecutive_headings_share_a_chunk_named_after_the_inner_one() -> None:
    document = extract(docx_with_headings_and_table(), DOCX)
    chunks = chunk(document)
    _check_invariants(document, chunks, 1200, 150)
    assert chunks[0].text.startswith("Field guide\n\nInstallation") and chunks[0].heading == "Installation"
    birds = [c for c in chunks if c.heading == "Birds"]
    assert len(birds) == 1 and "Kingfisher | 1" in birds[0].text


def test_csv_chunks_are_row_groups_with_the_header_repeated() -> None:
    rows = "\n".join(f"{n},item number {n},{n * 3}" for n in range(1, 121))
    document = extract(("id,name,price\n" + rows + "\n").encode(), CSV)
    chunks = chunk(document, target_chars=400, overlap_chars=50)
    _check_invariants(document, chunks, 400, 50)
    assert len(chunks) > 3
    assert chunks[0].prefix == "" and chunks[0].text.startswith("id,name,price\n1,")
    seen: list[str] = []
    for item in chunks:
        lines = item.text.split("\n")
        assert lines[0] == "id,name,price"
        if item.ordinal:
            assert item.prefix == "id,name,price\n"
        seen.extend(lines[1:])
    assert seen == rows.split("\n")  # whole rows, each exactly once, in order


def test_bad_arguments_and_an_empty_document() -> None:
    document = extract(b"Some text.", PLAIN)
    with pytest.raises(ValueError, match="target_chars"):
        chunk(document, target_chars=100, overlap_chars=100)
    assert chunk(ExtractedDocument(text="", media_type=PLAIN, sections=[])) == []


def test_an_unbroken_run_of_characters_is_cut_hard() -> None:
    document = extract(("x" * 1000).encode(), PLAIN)
    chunks = chunk(document, target_chars=300, overlap_chars=30)
    _check_invariants(document, chunks, 300, 30)
    assert "".join(c.text for c in chunks) == "x" * 1000
