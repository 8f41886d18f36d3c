"""Playwright (async API) driving Debian's chromium; `playwright install` cannot download here."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def chromium_path() -> str:
    path = os.environ.get("AGENT_UI_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        raise RuntimeError("chromium is not installed: run the README test command (it installs Debian's chromium)")
    return path


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A page whose journey fails if the Content-Security-Policy blocked anything the app needed."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    blocked: list[str] = []
    page.on("console", lambda line: blocked.append(line.text) if "Content Security Policy" in line.text else None)
    yield page
    await context.close()
    assert not blocked, f"the page's Content-Security-Policy blocked: {blocked}"
