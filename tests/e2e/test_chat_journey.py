"""Log in → ask → streamed answer visible → stop a long answer → reload → session and messages still there."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from tests.e2e.browser import register
from tests.upstream import ScriptedUpstream, Step, words

pytestmark = pytest.mark.e2e
EMAIL, PASSWORD = "chatter@example.com", "correct horse battery"


async def test_ask_stop_and_reload(live_url: str, page: Page, upstream: ScriptedUpstream) -> None:
    await register(page, live_url, EMAIL, PASSWORD)

    upstream.push(Step(text=words("Octopuses have three hearts and blue blood."), rate=20))
    box = page.get_by_placeholder(re.compile("Ask anything"))
    await box.fill("Tell me an octopus fact")
    await box.press("Enter")
    await expect(page.get_by_text("Octopuses have")).to_be_visible()  # first tokens, before the end
    await expect(page.get_by_text("Octopuses have three hearts and blue blood.")).to_be_visible()
    await expect(page).to_have_url(re.compile(r"/chat/chs_"))

    upstream.push(Step(text=[f"on{i} " for i in range(600)], rate=40))  # fifteen seconds unless stopped
    await box.fill("Now talk for a long time")
    await box.press("Enter")
    await expect(page.get_by_text(re.compile(r"on3 "))).to_be_visible()
    await page.reload()  # a running answer keeps streaming in after a reload
    await expect(page.get_by_text(re.compile(r"on40 "))).to_be_visible(timeout=10_000)
    await page.locator("button:has(i:text-is('stop'))").click()
    await expect(page.get_by_text("Stopped.")).to_be_visible()
    partial = await page.get_by_text(re.compile(r"^on0 ")).inner_text()
    assert "on599" not in partial

    await page.reload()
    thread = page.locator(".whitespace-pre-wrap")  # the user's bubbles
    await expect(thread.filter(has_text="Tell me an octopus fact")).to_be_visible()
    await expect(page.get_by_text("Octopuses have three hearts and blue blood.")).to_be_visible()
    await expect(thread.filter(has_text="Now talk for a long time")).to_be_visible()
    await expect(page.get_by_text("Stopped.")).to_be_visible()
    assert await page.get_by_text(re.compile(r"^on0 ")).inner_text() == partial
    await expect(page.locator(".truncate", has_text="Tell me an octopus fact")).to_be_visible()  # in the sidebar
