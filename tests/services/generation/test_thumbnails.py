"""Slide thumbnails with the real LibreOffice and pdftoppm: one PNG per slide at the asked width, in the theme's
colours; a PDF LibreOffice could open; a clear 503 without the programs; and no soffice left behind when a
conversion is cancelled or runs out of time."""

from __future__ import annotations

import asyncio
import io
import os
import struct
import tempfile
import zlib
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from services.errors import UpstreamUnavailableError
from services.generation import render, thumbnails
from services.generation.schemas import ChartData, ChartSeries, DeckSpec, SlideContent

WIDTH = 400
THEME = render.THEMES["dark"]
SPEC = DeckSpec(
    title="Three",
    slides=[
        SlideContent(layout="title", title="First slide title", subtitle="A subtitle"),
        SlideContent(layout="bullets", title="Second slide", bullets=["one point", "another point", "a third"]),
        SlideContent(
            layout="chart",
            title="Third slide",
            chart=ChartData(categories=["a", "b", "c"], series=[ChartSeries(name="s", values=[3, 1, 2])]),
        ),
    ],
)


def run_alone(make: Callable[[], Awaitable[Any]]) -> Any:
    """Run a coroutine on a loop of its own (module fixtures outlive a test's loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, make()).result()  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def deck() -> bytes:
    return render.render_deck(SPEC, theme="dark")


@pytest.fixture(scope="module")
def pngs(deck: bytes) -> list[bytes]:
    """The deck drawn once for every test that only looks at the pictures."""
    return run_alone(lambda: thumbnails.pptx_to_pngs(deck, width=WIDTH, expected=3))


def png_facts(png: bytes) -> tuple[int, int, tuple[int, ...]]:
    """Width, height and the top-left pixel (always stored unfiltered in effect: no neighbours to predict from)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert png[12:16] == b"IHDR"
    width, height, depth, color = struct.unpack(">IIBB", png[16:26])
    assert depth == 8 and color in (2, 6)  # 8-bit RGB or RGBA
    idat, pos = b"", 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind = png[pos + 4 : pos + 8]
        if kind == b"IDAT":
            idat += png[pos + 8 : pos + 8 + length]
        pos += 12 + length
    raw = zlib.decompressobj().decompress(idat, 16)
    return width, height, tuple(raw[1:4])


def test_programs_are_here() -> None:
    """This machine has both programs (the rest of the file tests them for real)."""
    assert thumbnails.available() is None


def test_one_png_per_slide_in_order(pngs: list[bytes]) -> None:
    assert len(pngs) == 3
    for png in pngs:
        width, height, corner = png_facts(png)
        assert (width, height) == (WIDTH, round(WIDTH * 9 / 16))
        assert max(abs(a - b) for a, b in zip(corner, THEME.background, strict=True)) <= 3  # the dark background
    assert len(set(pngs)) == 3  # three different pictures
    assert min(len(p) for p in pngs) > 2_000  # not blank pages


async def test_pdf_has_every_slide(deck: bytes) -> None:
    pdf = await thumbnails.pptx_to_pdf(deck)
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 3
    box = reader.pages[0].mediabox
    assert abs(float(box.width) / float(box.height) - 16 / 9) < 0.01
    assert "First slide title" in reader.pages[0].extract_text()
    assert "another point" in reader.pages[1].extract_text()


async def test_wrong_page_count_is_an_error(deck: bytes) -> None:
    with pytest.raises(UpstreamUnavailableError) as caught:
        await thumbnails.pptx_to_pngs(deck, width=64, expected=4)
    assert caught.value.code == "thumbnails_failed"
    assert "3 pages for 4 slides" in caught.value.message


async def test_without_the_programs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, deck: bytes) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: nothing to find
    reason = thumbnails.available()
    assert reason is not None and "LibreOffice is not installed" in reason
    for convert in (thumbnails.pptx_to_pngs, thumbnails.pptx_to_pdf):
        with pytest.raises(UpstreamUnavailableError) as caught:
            await convert(deck)
        assert caught.value.code == "thumbnails_unavailable"
        assert "apt install libreoffice-impress poppler-utils" in caught.value.message


async def test_without_pdftoppm(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, deck: bytes) -> None:
    soffice = thumbnails._soffice()
    assert soffice is not None
    (tmp_path / "soffice").symlink_to(soffice)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert "pdftoppm" in (thumbnails.available() or "")
    with pytest.raises(UpstreamUnavailableError) as caught:
        await thumbnails.pptx_to_pngs(deck)
    assert caught.value.code == "thumbnails_unavailable"


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains ``text`` (ours only: the path is this test's own)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            state = next(line for line in (entry / "status").read_text().splitlines() if line.startswith("State:"))
        except (OSError, StopIteration):
            continue  # gone meanwhile
        if text in cmdline and "Z" not in state.split()[1]:
            found.append(int(entry.name))
    return found


async def started_conversion(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, deck: bytes, **kwargs: Any
) -> asyncio.Task[list[bytes]]:
    """A conversion whose temporary directory is under ``tmp_path``, once LibreOffice is seen running."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    task = asyncio.create_task(thumbnails.pptx_to_pngs(deck, **kwargs))
    for _ in range(200):
        await asyncio.sleep(0.025)
        if processes_mentioning(str(tmp_path)) or task.done():
            break
    assert processes_mentioning(str(tmp_path)), "LibreOffice never started"
    return task


async def no_process_left(tmp_path: Path) -> None:
    for _ in range(40):  # killed processes disappear from /proc within moments
        if not processes_mentioning(str(tmp_path)):
            break
        await asyncio.sleep(0.05)
    assert processes_mentioning(str(tmp_path)) == []
    assert list(tmp_path.iterdir()) == []  # the temporary directory is gone too


async def test_cancelled_conversion_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, deck: bytes
) -> None:
    task = await started_conversion(monkeypatch, tmp_path, deck)
    await asyncio.sleep(0.5)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await no_process_left(tmp_path)


async def test_timeout_leaves_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, deck: bytes) -> None:
    task = await started_conversion(monkeypatch, tmp_path, deck, timeout_s=0.6)
    with pytest.raises(UpstreamUnavailableError) as caught:
        await task
    assert caught.value.code == "thumbnails_failed"
    assert "took longer than 0.6 s" in caught.value.message
    await no_process_left(tmp_path)
