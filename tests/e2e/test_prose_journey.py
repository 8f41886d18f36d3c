"""Prose in a real browser, with no network: a prompt typed on Generate → Prose is written by the scripted model and
appears progressively (text on the page while Stop is still there), goes on after a reload mid-way, then Copy puts
the markdown on the clipboard and Download .md gives the same text as the page shows. Screenshots:
docs/screenshots/prose-{form,streaming,done}-{desktop,phone}.png."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, Page, expect

from tests.e2e.browser import SCREENSHOTS, register, settled
from tests.e2e.test_accessible_names import nameless_buttons
from tests.e2e.test_chat_journey import clipboard, opened, toast
from tests.upstream import ScriptedUpstream, Step, words

pytestmark = pytest.mark.e2e
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
PROMPT = "Why does the sea have tides? For curious twelve-year-olds."
ARTICLE = (
    "# Why the Sea Breathes\n\n"
    "Twice a day the sea creeps up the beach and slides away again. It looks like breathing, but the ocean is "
    "being pulled by the **Moon**.\n\n"
    "## The Moon's tug\n\n"
    "Gravity pulls the water nearest the Moon a little harder than the rest of the Earth, so it heaps up into a "
    "bulge. On the far side a second bulge forms, because there the Earth is pulled away from the water.\n\n"
    "## Spring and neap tides\n\n"
    "- When the Sun and the Moon line up, their pulls add up: the highest highs, called spring tides.\n"
    "- When they pull at right angles, the tides are gentle: neap tides.\n\n"
    "Next time you build a sandcastle, you will know who is coming to knock it down."
)


async def shoot(page: Page, name: str, viewport: dict[str, int], *, reload: bool) -> None:
    """``docs/screenshots/prose-<name>-<desktop|phone>.png`` at that size, once transitions are over."""
    await page.set_viewport_size(viewport)  # type: ignore[arg-type]
    await settled(page, reload=reload)
    label = "phone" if viewport == PHONE else "desktop"
    await page.screenshot(path=str(SCREENSHOTS / f"prose-{name}-{label}.png"))


async def fill(page: Page) -> None:
    await page.get_by_label("What to write").fill(PROMPT)
    await page.get_by_role("button", name="Article", exact=True).click()
    await page.get_by_role("button", name="Short", exact=True).click()
    await expect(page.get_by_text("About 150 words")).to_be_visible()


def plain(markdown: str) -> str:
    """What the text reads as on the page: no heading, list or emphasis marks, whitespace evened out."""
    text = re.sub(r"^(#+|-)\s+", "", markdown, flags=re.MULTILINE).replace("**", "")
    return " ".join(text.split())


async def test_a_text_streams_in_is_copied_and_downloaded_as_shown(
    live_url: str, browser: Browser, upstream: ScriptedUpstream
) -> None:
    async with opened(browser, DESKTOP, clipboard=True) as page:
        await register(page, live_url, "author@example.com")
        await page.get_by_role("link", name="Generate").click()
        await page.get_by_role("link", name=re.compile("^Prose")).click()
        await expect(page).to_have_title("Prose · agent-ui")
        await expect(page.get_by_text("Your text appears here")).to_be_visible()
        await expect(page.get_by_text("None yet.")).to_be_visible()

        await page.set_viewport_size(PHONE)  # type: ignore[arg-type]
        await settled(page)  # opened on the phone (the desktop's drawer would cover it)
        await fill(page)
        await shoot(page, "form", PHONE, reload=False)
        await page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]
        await settled(page)
        await fill(page)
        await shoot(page, "form", DESKTOP, reload=False)

        upstream.push(Step(text=words(ARTICLE), rate=7))  # about fifteen seconds of writing
        await page.get_by_role("button", name="Write", exact=True).click()
        await expect(page).to_have_url(re.compile(r"/generate/prose\?run=run_\w+$"))
        text, stop = page.locator(".prose-text"), page.get_by_role("button", name="Stop")
        await expect(text).to_contain_text("Why the Sea Breathes")  # the first words ...
        await expect(stop).to_be_visible()  # ... while it is still being written
        assert "sandcastle" not in await text.inner_text()
        so_far = len(await text.inner_text())
        await page.wait_for_function("n => document.querySelector('.prose-text').innerText.length > n", arg=so_far)
        await expect(page.get_by_role("button", name="Writing…")).to_be_disabled()  # one text at a time
        await shoot(page, "streaming", DESKTOP, reload=False)
        await shoot(page, "streaming", PHONE, reload=True)  # a reload goes on with it, live
        await expect(text).to_contain_text("The Moon's tug")
        await expect(stop).to_be_visible()
        # longer than the phone's screen: the window keeps the newest words in view while they come, to the last
        copy = page.get_by_role("button", name="Copy")
        await expect(copy).to_be_visible(timeout=30_000)
        await expect(stop).to_be_hidden()
        end = await text.bounding_box()
        assert end is not None and end["y"] + end["height"] <= PHONE["height"]  # its end is on the screen ...
        assert await page.evaluate("window.scrollY") > 0  # ... because the window followed it down

        await page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]
        await settled(page)  # the finished text, from its link
        await expect(page.get_by_text("Done", exact=True)).to_be_visible()
        shown = await text.inner_text()
        assert " ".join(shown.split()) == plain(ARTICLE)
        await expect(page.locator(".prose-recent-item", has_text="Why the Sea Breathes")).to_be_visible()

        await copy.click()
        await toast(page, "Copied")
        assert await clipboard(page) == ARTICLE

        async with page.expect_download() as started:
            await page.get_by_role("link", name="Download .md").click()
        download = await started.value
        assert download.suggested_filename == "why-the-sea-breathes.md"
        saved = await download.path()
        markdown = saved.read_text(encoding="utf-8")
        assert markdown == ARTICLE + "\n"
        assert plain(markdown) == " ".join(shown.split())  # the file says what the page shows

        assert await nameless_buttons(page) == []
        await shoot(page, "done", DESKTOP, reload=True)  # the link shows it again
        await expect(text).to_contain_text("sandcastle")
        await shoot(page, "done", PHONE, reload=True)
