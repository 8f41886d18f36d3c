"""A chat grounded in the user's documents, in a real browser: a PDF added over the API is attached in the composer,
the answer cites it with a numbered badge and a source chip, and the badge opens the passage beside the chat on
page 7 (its sentence marked and in view); on a phone the passage is a sheet that Escape closes."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.agent_ui.api.v1.test_chat_rag import ready_pdf
from tests.e2e.browser import PASSWORD, PHONE, register, screenshots, settled
from tests.services.rag.files import PAGE7_SENTENCE
from tests.upstream import ScriptedUpstream, Step, words

pytestmark = pytest.mark.e2e
EMAIL = "reader@example.com"
QUESTION = "What does the heron ledger of Quillbrook record?"


async def handbook(base_url: str) -> str:
    """The ten-page PDF, uploaded with the user's token and ingested."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        login = await client.post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
        assert login.status_code == 200, login.text
        client.cookies.clear()
        return await ready_pdf(client, {"Authorization": f"Bearer {login.json()['access_token']}"})


async def ask(page: Page, text: str) -> None:
    box = page.get_by_placeholder(re.compile("Ask anything"))
    await box.fill(text)
    await box.press("Enter")


async def test_attach_ask_and_open_the_cited_page(live_url: str, page: Page, upstream: ScriptedUpstream) -> None:
    await register(page, live_url, EMAIL)
    await handbook(live_url)

    # Attach the handbook: a picker of ready resources; the choice shows as a chip over the message box.
    await page.get_by_role("button", name="Attach resources").click()
    picker = page.get_by_role("dialog")
    await picker.get_by_role("checkbox", name="handbook").click()
    await picker.get_by_role("button", name="Done").click()
    await expect(picker).to_be_hidden()
    attached = page.locator(".chat-attachments")
    await expect(attached.get_by_text("handbook")).to_be_visible()

    upstream.push(Step(text=words("The ledger records seventeen copper bells [1]."), rate=40))
    await ask(page, QUESTION)
    await expect(page.get_by_text("The ledger records seventeen copper bells")).to_be_visible()
    await expect(page.get_by_role("button", name="Send")).to_be_visible()
    answer = page.locator(".chat-answer").last
    await expect(answer.get_by_text(f"Searched your documents: {QUESTION}")).to_be_visible()
    # The text's [1] is a badge; under the answer, one chip: the cited source only (more passages were found).
    badge = answer.locator(".chat-md").get_by_role("button", name="Source 1: handbook, p. 7")
    await expect(badge).to_have_text("1")
    await expect(answer.locator(".chat-source-chip")).to_have_count(1)
    await expect(answer.locator(".chat-source-chip")).to_contain_text("handbook")
    await expect(answer.locator(".chat-source-chip")).to_contain_text("p. 7")
    await expect(attached.get_by_text("handbook")).to_be_visible()  # still attached for the next turn

    # The badge opens page 7 beside the chat, the cited sentence marked and scrolled into view.
    thread_width = (await page.locator(".chat-main").bounding_box() or {"width": 0})["width"]
    await badge.click()
    panel = page.get_by_role("complementary", name="Source")
    await expect(panel.get_by_role("heading", name="handbook")).to_be_visible()
    await expect(panel.get_by_text("Page 7 of 10")).to_be_visible()
    mark = panel.locator("mark")
    await expect(mark).to_contain_text("seventeen copper bells")
    assert PAGE7_SENTENCE in " ".join((await mark.inner_text()).split())
    await expect(mark).to_be_in_viewport()
    await expect(panel).to_be_focused()
    assert (await page.locator(".chat-main").bounding_box() or {"width": 1e9})["width"] < thread_width  # beside it
    await screenshots(page, "chat-citations", reload=False)

    # On a phone: the chip opens the passage as a sheet over the chat; Escape closes it and focus returns.
    await page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    await settled(page)
    chip = page.locator(".chat-answer").last.locator(".chat-source-chip")
    await chip.click()
    await expect(panel.get_by_text("Page 7 of 10")).to_be_visible()
    await expect(mark).to_be_in_viewport()
    sheet = await panel.bounding_box()
    assert sheet is not None and sheet["width"] == PHONE["width"] and sheet["y"] > 0
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    await expect(panel).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(panel).to_be_hidden()
    # Focus is back on the chip (Quasar keeps a button's focus on a helper inside it).
    assert await chip.evaluate("chip => chip.contains(document.activeElement)")
