"""A deck asked for in the chat, in a real browser with no network (the issue's acceptance): the scripted model
calls ``generate_deck`` for six slides about lighthouses; the card shows the deck's progress, then its first
thumbnails (drawn by LibreOffice); "Download .pptx" downloads a real file of six slides (python-pptx); "Open in
Slides" opens the deck, where slide 3's title is edited and two slides swapped by drag, and the .pptx downloaded
there has both changes and opens in LibreOffice. Then the Generate hub lists the job, and a second deck started
meanwhile is cancelled from there. Screenshots: docs/screenshots/chat-deck-card-{running,done}-{desktop,phone}.png,
jobs-panel-*.png."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import re

import pytest
from playwright.async_api import Locator, Page, expect
from pptx import Presentation
from pypdf import PdfReader

from services.generation.thumbnails import pptx_to_pdf
from tests.agent_ui.pages.test_generation_card import AFTER_THE_TOOL, DECK_CALL, SLIDES, deck_steps
from tests.e2e.browser import SCREENSHOTS, register, settled
from tests.e2e.test_accessible_names import nameless_buttons
from tests.e2e.test_chat_journey import answered, ask
from tests.upstream import ScriptedUpstream, Step, words

pytestmark = pytest.mark.e2e
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


async def shoot(page: Page, name: str, *, focus: str | None = None, reload: bool = False) -> None:
    """``docs/screenshots/<name>-desktop.png`` and ``-phone.png``, with ``focus`` scrolled into view: as the page
    is now, or ``reload``ed at each size as that device would open it (the desktop's open drawer would cover a
    phone's page); the desktop size is restored after."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        await page.set_viewport_size(viewport)  # type: ignore[arg-type]
        await settled(page, reload=reload)
        if focus is not None:
            await page.locator(focus).last.evaluate("element => element.scrollIntoView({block: 'center'})")
        await page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"))
    await page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]


async def test_a_deck_asked_for_in_chat_is_followed_opened_and_downloaded(
    live_url: str, page: Page, upstream: ScriptedUpstream
) -> None:
    await page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]
    await register(page, live_url, "decks@example.com")

    steps = deck_steps()
    steps[3] = dataclasses.replace(steps[3], stall_s=8.0)  # the third slide takes a while: the progress shows
    upstream.push(DECK_CALL, Step(text=words("Your deck is being made: it shows up below."), match=AFTER_THE_TOOL),
                  *steps)  # fmt: skip
    await ask(page, "Make me a 6-slide deck about lighthouses")
    card = page.locator(".gen-card")
    progress = card.get_by_role("progressbar", name="Progress of the deck")
    await expect(progress).to_be_visible()
    await expect(card.get_by_text("Writing slide 4 of 6")).to_be_visible(timeout=30_000)
    await expect(card.get_by_text("3/6", exact=True)).to_be_visible()
    await expect(card.get_by_role("button", name="Cancel the deck")).to_be_visible()
    await answered(page, "Your deck is being made: it shows up below.")
    await shoot(page, "chat-deck-card-running", focus=".gen-card")

    thumbnails = card.locator("img")
    await expect(thumbnails).to_have_count(4, timeout=120_000)
    await expect(progress).to_be_hidden()
    titles = list(SLIDES)
    for index, image in enumerate(await thumbnails.all()):
        await expect(image).to_have_attribute("alt", re.compile(rf"^Slide {index + 1}: "))
        loaded = await image.evaluate("i => i.complete ? i.naturalWidth : new Promise(done => i.onload = () => "
                                      "done(i.naturalWidth))")  # fmt: skip
        assert loaded > 100, f"thumbnail {index + 1} did not load"
    await expect(thumbnails.nth(1)).to_have_attribute("alt", f"Slide 2: {titles[0]}")
    await expect(card.get_by_text("+2", exact=True)).to_be_visible()
    await expect(card.get_by_text("Ready", exact=True)).to_be_visible()
    assert await nameless_buttons(page) == []
    await shoot(page, "chat-deck-card-done", focus=".gen-card")

    # Download .pptx: a real file of six slides
    async with page.expect_download() as downloading:
        await card.get_by_role("link", name="Download .pptx").click()
    download = await downloading.value
    assert download.suggested_filename.endswith(".pptx")
    deck = Presentation(str(await download.path()))
    assert len(deck.slides) == 6
    assert [slide.shapes.title.text for slide in deck.slides][1:] == titles

    # Open in Slides: the deck's page
    open_slides = card.get_by_role("link", name="Open in Slides")
    href = await open_slides.get_attribute("href")
    assert href is not None and re.fullmatch(r"/generate/slides\?deck=run_\w+", href), href
    await open_slides.click()
    await expect(page).to_have_url(re.compile(re.escape(href) + "$"))
    await expect(page).to_have_title("Slides · agent-ui")

    # The issue's acceptance, on: slide 3's title edited, slides 2 and 3 swapped, the .pptx downloaded, and
    # LibreOffice opens it with both changes
    def slide(n: int) -> Locator:
        return page.locator(f'.slide-grid .slide-card[data-index="{n - 1}"]')

    shown = page.locator(".slide-grid .slide-title")
    await expect(shown).to_have_count(6)
    before = await shown.all_inner_texts()
    await slide(3).get_by_role("button", name=re.compile(r"^Edit slide 3: ")).click()
    editor = page.locator(".slide-editor")
    await editor.get_by_label("Title", exact=True).fill("Oil against gas")
    await editor.get_by_role("button", name="Save").click()
    await expect(slide(3).locator(".slide-title")).to_have_text("Oil against gas")
    await page.keyboard.press("Escape")
    await expect(editor).to_be_hidden()
    box = await slide(3).bounding_box()
    assert box is not None
    await slide(2).drag_to(slide(3), target_position={"x": box["width"] * 0.8, "y": box["height"] / 3})
    order = [before[0], "Oil against gas", before[1], *before[3:]]
    await expect(shown).to_have_text(order)
    async with page.expect_download() as downloading:
        await page.get_by_role("link", name="Download .pptx").click()
    data = await asyncio.to_thread((await (await downloading.value).path()).read_bytes)
    edited = Presentation(io.BytesIO(data))
    assert [s.shapes.title.text for s in edited.slides] == order
    assert len(PdfReader(io.BytesIO(await pptx_to_pdf(data))).pages) == 6

    # The hub lists the deck; a second one started meanwhile is cancelled from the list
    slow = deck_steps()
    slow[0] = dataclasses.replace(slow[0], stall_s=30.0)  # still planning its slides while it is looked at
    upstream.push(*slow)
    started = await page.request.post(f"{live_url}/api/v1/agent/generation/ppt", headers={"Origin": live_url},
                                       data={"topic": "harbours and breakwaters", "slide_count": 6})  # fmt: skip
    assert started.status == 202, await started.text()
    await page.goto(f"{live_url}/generate")
    panel = page.locator(".jobs-list")
    rows = panel.locator(".jobs-row")
    await expect(rows).to_have_count(2)
    await expect(rows.nth(0)).to_contain_text("harbours and breakwaters")
    await expect(rows.nth(0).get_by_role("progressbar")).to_be_visible()
    await expect(rows.nth(0).get_by_text("Planning the slides")).to_be_visible(timeout=30_000)
    await expect(rows.nth(1)).to_contain_text("Lighthouses")
    await expect(rows.nth(1).get_by_role("link", name="Open Lighthouses")).to_have_attribute("href", href)
    assert await nameless_buttons(page) == []
    await shoot(page, "jobs-panel", focus=".jobs-list", reload=True)
    await rows.nth(0).get_by_role("button", name="Cancel harbours and breakwaters").click()
    await expect(rows.nth(0).get_by_text("Cancelled", exact=True)).to_be_visible()
    await expect(rows.nth(0).get_by_text("Cancelled: the deck was not finished.")).to_be_visible()
