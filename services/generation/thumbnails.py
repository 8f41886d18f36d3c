"""Slide pictures: LibreOffice turns the .pptx into a PDF and poppler's pdftoppm turns each page into a PNG.

Both run as asyncio subprocesses in their own process group, in a fresh temporary directory with a throwaway
LibreOffice profile (so conversions never share or lock one); on a timeout or a cancellation the whole group is
killed, so no soffice is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from services.errors import UpstreamUnavailableError

MISSING_SOFFICE = (
    "LibreOffice is not installed: slide thumbnails need it (apt install libreoffice-impress poppler-utils)"
)
MISSING_PDFTOPPM = (
    "pdftoppm (poppler) is not installed: slide thumbnails need it (apt install libreoffice-impress poppler-utils)"
)
STDERR_TAIL = 800  # characters of a failed program's output kept in the error
_PAGE = re.compile(r"-(\d+)\.png$")
T = TypeVar("T")


def _soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def available() -> str | None:
    """``None`` when slides can be drawn here, else why not (what to install)."""
    if _soffice() is None:
        return MISSING_SOFFICE
    if shutil.which("pdftoppm") is None:
        return MISSING_PDFTOPPM
    return None


def _failed(message: str, output: bytes = b"") -> UpstreamUnavailableError:
    tail = output.decode("utf-8", "replace").strip()[-STDERR_TAIL:]
    return UpstreamUnavailableError(
        f"{message}: {tail}" if tail else message, code="thumbnails_failed", details={"output": tail} if tail else None
    )


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


async def _run(argv: list[str], *, timeout_s: float, what: str, cwd: Path) -> None:
    """Run a program to its end in its own process group; any process of the group still alive afterwards (or on
    timeout or cancellation) is killed."""
    env = {**os.environ, "HOME": str(cwd)}  # LibreOffice writes caches under $HOME besides the profile
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=cwd,
        env=env,
        start_new_session=True,
    )
    try:
        async with asyncio.timeout(timeout_s):
            output, _ = await proc.communicate()
    except TimeoutError:
        raise _failed(f"{what} took longer than {timeout_s:g} s") from None
    finally:
        _kill_group(proc.pid)  # the group outlives its leader while any child is alive
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                await asyncio.shield(proc.wait())
    if proc.returncode != 0:
        raise _failed(f"{what} failed (exit {proc.returncode})", output)


async def _to_pdf(pptx: bytes, work: Path, timeout_s: float) -> Path:
    soffice = _soffice()
    if soffice is None:
        raise UpstreamUnavailableError(MISSING_SOFFICE, code="thumbnails_unavailable")
    source = work / "deck.pptx"
    await asyncio.to_thread(source.write_bytes, pptx)
    profile = (work / "profile").as_uri()
    argv = [soffice, "--headless", "--norestore", "--nolockcheck", "--nologo", "--nodefault",
            f"-env:UserInstallation={profile}", "--convert-to", "pdf", "--outdir", str(work), str(source)]  # fmt: skip
    await _run(argv, timeout_s=timeout_s, what="LibreOffice", cwd=work)
    pdf = work / "deck.pdf"
    if not await asyncio.to_thread(pdf.is_file):
        raise _failed("LibreOffice wrote no PDF (is the file a presentation?)")
    return pdf


async def _in_workdir(job: Callable[[Path], Awaitable[T]]) -> T:
    """Run ``job`` in a fresh temporary directory, removed afterwards whatever happened."""
    work = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="agent-ui-slides-"))
    try:
        return await job(work)
    finally:
        await asyncio.shield(asyncio.to_thread(shutil.rmtree, work, True))


async def pptx_to_pdf(pptx: bytes, *, timeout_s: float = 120) -> bytes:
    """The deck as LibreOffice prints it. 503 ``thumbnails_unavailable`` without LibreOffice, ``thumbnails_failed``
    when the conversion fails or takes longer than ``timeout_s``."""

    async def job(work: Path) -> bytes:
        pdf = await _to_pdf(pptx, work, timeout_s)
        return await asyncio.to_thread(pdf.read_bytes)

    return await _in_workdir(job)


async def pptx_to_pngs(
    pptx: bytes, *, width: int = 640, timeout_s: float = 120, expected: int | None = None
) -> list[bytes]:
    """One PNG per slide, in order, ``width`` pixels wide. 503 ``thumbnails_unavailable`` when LibreOffice or
    pdftoppm is missing; ``thumbnails_failed`` when a program fails, the whole takes longer than ``timeout_s`` or
    the page count is not ``expected``."""
    reason = available()
    if reason is not None:
        raise UpstreamUnavailableError(reason, code="thumbnails_unavailable")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s

    async def job(work: Path) -> list[bytes]:
        pdf = await _to_pdf(pptx, work, timeout_s)
        pdftoppm = shutil.which("pdftoppm") or "pdftoppm"
        argv = [pdftoppm, "-png", "-scale-to-x", str(width), "-scale-to-y", "-1", str(pdf), str(work / "page")]
        await _run(argv, timeout_s=max(1.0, deadline - loop.time()), what="pdftoppm", cwd=work)
        return await asyncio.to_thread(_read_pages, work)

    pngs = await _in_workdir(job)
    if expected is not None and len(pngs) != expected:
        raise _failed(f"LibreOffice drew {len(pngs)} pages for {expected} slides")
    return pngs


def _read_pages(work: Path) -> list[bytes]:
    """The PNGs pdftoppm wrote (page-1.png or page-01.png ...), in page order."""
    pages = []
    for path in work.glob("page-*.png"):
        found = _PAGE.search(path.name)
        if found:
            pages.append((int(found.group(1)), path))
    return [path.read_bytes() for _, path in sorted(pages)]
