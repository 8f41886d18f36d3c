"""A deck in a real browser, with no network: the scripted model writes a six-slide deck from a topic, the
progress shows by stage, then the grid of thumbnails (LibreOffice draws them; each one loads). Slide 3's title is
edited in the editor and its thumbnail is drawn anew; slide 2 is dragged after slide 3; the downloaded .pptx has
the edit and the new order, and LibreOffice opens it. Screenshots at 1280x800 and 390x844:
docs/screenshots/slides-{form,progress,deck,editor}-{desktop,phone}.png."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from playwright.async_api import Locator, Page, expect
from pptx import Presentation
from pypdf import PdfReader

from services.generation.thumbnails import pptx_to_pdf
from tests.agent_ui.api.v1.test_slides import titles_of
from tests.agent_ui.pages.test_slides_page import EDITED, lighthouse_steps
from tests.e2e.browser import SCREENSHOTS, register, settled
from tests.e2e.test_accessible_names import nameless_buttons
from tests.upstream import ScriptedUpstream

pytestmark = pytest.mark.e2e
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# Every picture in the grid has loaded (a broken or pending one has no natural width).
PICTURES_LOADED = """(count) => {
  const pictures = [...document.querySelectorAll('.slide-grid .slide-card img')].filter(i => i.offsetParent);
  return pictures.length === count && pictures.every(i => i.complete && i.naturalWidth > 0);
}"""


async def shot(page: Page, name: str, size: dict[str, int]) -> None:
    await page.set_viewport_size(size)  # type: ignore[arg-type]
    await settled(page, reload=False)
    await page.screenshot(path=str(SCREENSHOTS / name))


async def shots(page: Page, name: str, *, again: Callable[[], Awaitable[None]] | None = None,
                on_phone: Callable[[], Awaitable[None]] | None = None) -> None:  # fmt: skip
    """``slides-<name>-desktop.png`` as the page is, then ``-phone.png`` reloaded at phone size (the desktop's
    drawer would cover it otherwise), with ``again`` done after the reload (what a reload undoes: a dialog, a
    form's fields) and ``on_phone`` checked there."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await shot(page, f"slides-{name}-desktop.png", DESKTOP)
    await page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    await settled(page)
    if again is not None:
        await again()
    await shot(page, f"slides-{name}-phone.png", PHONE)
    if on_phone is not None:
        await on_phone()
    await page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]
    await settled(page)
    if again is not None:
        await again()


def card(page: Page, n: int) -> Locator:
    """The card of slide ``n`` (from 1), as the grid is now."""
    return page.locator(f'.slide-grid .slide-card[data-index="{n - 1}"]')


async def test_a_deck_is_generated_edited_reordered_and_downloaded(
    live_url: str, page: Page, upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    await page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]
    await register(page, live_url, "presenter@example.com")
    await page.get_by_role("link", name="Generate").click()
    await page.get_by_role("link", name=re.compile("^Slides")).click()
    await expect(page).to_have_title("Slides · agent-ui")

    async def fill_in() -> None:
        await page.get_by_label("What is the deck about?").fill("How lighthouses work")
        await page.get_by_role("radio", name="Ocean").click()

    await fill_in()
    await expect(page.get_by_role("radio", name="Ocean")).to_have_attribute("aria-checked", "true")
    await expect(page.get_by_label("Slides", exact=True)).to_have_value("6")
    await shots(page, "form", again=fill_in)
    assert await nameless_buttons(page) == []

    steps, title, titles = lighthouse_steps()
    steps[2] = dataclasses.replace(steps[2], stall_s=8.0)  # the second slide takes a while: the progress shows
    upstream.push(*steps)
    await page.get_by_role("button", name="Generate").click()
    progress = page.get_by_role("progressbar", name="Progress of the deck")
    await expect(progress).to_be_visible()
    await expect(page.get_by_text(re.compile(r"^Writing slide \d of 6$"))).to_be_visible()
    await expect(page).to_have_url(re.compile(r"/generate/slides\?deck=run_\w+$"))
    await shots(page, "progress")  # reloaded on the phone: the deck in the URL shows its progress again
    await expect(progress).to_be_visible()

    # the grid: six cards, each with its thumbnail loaded
    cards = page.locator(".slide-grid .slide-card")
    await expect(cards).to_have_count(6, timeout=120_000)
    await expect(progress).to_be_hidden()
    await expect(page.locator(".slide-grid .slide-title")).to_have_text(titles)
    await page.wait_for_function(PICTURES_LOADED, arg=6, timeout=60_000)
    await expect(page.get_by_text(title, exact=True).first).to_be_visible()
    assert await nameless_buttons(page) == []

    async def two_columns() -> None:
        """On a phone the grid has two columns, and the page does not scroll sideways."""
        boxes = [await card(page, n).bounding_box() for n in (1, 2, 3)]
        assert all(boxes) and boxes[0]["y"] == boxes[1]["y"] < boxes[2]["y"], boxes  # type: ignore[index]
        assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    await shots(page, "deck", on_phone=two_columns)

    # slide 3's title edited in the editor: the grid says it, and its thumbnail is drawn anew
    third = card(page, 3).locator("img")
    before = await third.get_attribute("src")
    assert before is not None
    old_png = await page.request.get(live_url + before)  # the URL names the version; the server has the current one
    assert old_png.ok and old_png.headers["content-type"] == "image/png"
    await card(page, 3).get_by_role("button", name=re.compile(r"^Edit slide 3: ")).click()
    editor = page.locator(".slide-editor")
    await expect(editor.get_by_text("Slide 3 of 6")).to_be_visible()
    await expect(editor.locator(".q-select").first).to_contain_text("Two columns")
    await editor.get_by_label("Title", exact=True).fill(EDITED)
    await editor.get_by_role("button", name="Save").click()
    await expect(page.locator(".q-notification", has_text="Slide 3 saved")).to_be_visible()
    await expect(card(page, 3).locator(".slide-title")).to_have_text(EDITED)
    await expect(third).not_to_have_attribute("src", before, timeout=60_000)
    await page.wait_for_function(PICTURES_LOADED, arg=6, timeout=30_000)
    after = await third.get_attribute("src")
    assert after is not None
    new_png = await page.request.get(live_url + after)
    assert new_png.ok and new_png.headers["content-type"] == "image/png"
    assert (await old_png.body()) != (await new_png.body())
    await expect(editor.locator(".slide-editor-preview img")).to_have_attribute("src", after)
    await shots(page, "editor", again=card(page, 3).get_by_role("button", name=re.compile(r"^Edit slide 3: ")).click)
    assert await nameless_buttons(page) == []

    # slide 2 dragged onto the right half of slide 3: they swap
    await page.keyboard.press("Escape")
    await expect(editor).to_be_hidden()
    box = await card(page, 3).bounding_box()
    assert box is not None
    await card(page, 2).drag_to(card(page, 3), target_position={"x": box["width"] * 0.8, "y": box["height"] / 3})
    order = [titles[0], EDITED, titles[1], *titles[3:]]
    await expect(page.locator(".slide-grid .slide-title")).to_have_text(order)
    await expect(page.locator(".q-notification", has_text="Slide 2 moved to place 3")).to_be_visible()

    # the .pptx as downloaded: the edit and the new order, and LibreOffice opens it
    async with page.expect_download() as downloading:
        await page.get_by_role("link", name="Download .pptx").click()
    download = await downloading.value
    assert download.suggested_filename.endswith(".pptx")
    saved = tmp_path / download.suggested_filename
    await download.save_as(saved)
    data = await asyncio.to_thread(saved.read_bytes)
    assert titles_of(await asyncio.to_thread(Presentation, io.BytesIO(data))) == order
    assert len(PdfReader(io.BytesIO(await pptx_to_pdf(data))).pages) == 6

    # deleted (once confirmed): gone from the page, the list and the URL
    await page.get_by_role("button", name="Delete deck").click()
    await page.get_by_role("dialog").get_by_role("button", name="Delete deck").click()
    await expect(page.locator(".q-notification", has_text="deleted")).to_be_visible()
    await expect(cards).to_have_count(0)
    await expect(page.get_by_text("None yet.")).to_be_visible()
    await expect(page).to_have_url(re.compile(r"/generate/slides$"))
