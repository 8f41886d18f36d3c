"""The chat in a real browser, answering from the scripted upstream: streaming, stop, reload mid-answer, tools,
branches (regenerate, edit), copying code and answers, the layout at laptop and phone sizes, auto-scroll."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from playwright.async_api import Browser, Page, expect

from tests.e2e.browser import register, screenshots
from tests.upstream import ScriptedUpstream, Step, words

pytestmark = pytest.mark.e2e
EMAIL, PASSWORD = "chatter@example.com", "correct horse battery"
LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
CODE = "Here is one:\n\n```python\ndef add(a, b):\n    return a + b\n```\n\nCall it as `add(1, 2)`."


@asynccontextmanager
async def opened(browser: Browser, viewport: dict[str, int], *, clipboard: bool = False) -> AsyncIterator[Page]:
    """A page at ``viewport`` whose journey fails if the Content-Security-Policy blocked anything."""
    context = await browser.new_context(
        viewport=viewport,  # type: ignore[arg-type]
        permissions=["clipboard-read", "clipboard-write"] if clipboard else [],
    )
    page = await context.new_page()
    blocked: list[str] = []
    page.on("console", lambda line: blocked.append(line.text) if "Content Security Policy" in line.text else None)
    try:
        yield page
    finally:
        await context.close()
    assert not blocked, f"the page's Content-Security-Policy blocked: {blocked}"


async def ask(page: Page, text: str) -> None:
    box = page.get_by_placeholder(re.compile("Ask anything"))
    await box.fill(text)
    await box.press("Enter")


async def answered(page: Page, text: str) -> None:
    """``text`` is shown and the answer is over (the send button is back)."""
    await expect(page.get_by_text(text)).to_be_visible()
    await expect(page.get_by_role("button", name="Send")).to_be_visible()


async def toast(page: Page, text: str) -> None:
    await expect(page.locator(".q-notification", has_text=text).last).to_be_visible()


async def clipboard(page: Page) -> str:
    return str(await page.evaluate("navigator.clipboard.readText()"))


async def test_ask_stop_and_reload(live_url: str, page: Page, upstream: ScriptedUpstream) -> None:
    await register(page, live_url, EMAIL, PASSWORD)

    upstream.push(Step(text=words("Octopuses have three hearts and blue blood."), rate=20, stall_s=1.5))
    await ask(page, "Tell me an octopus fact")
    await expect(page.get_by_role("status", name="Waiting for the answer")).to_be_visible()  # before the first token
    await expect(page.get_by_text("Octopuses have")).to_be_visible()  # first tokens, before the end
    await expect(page.get_by_role("status", name="Waiting for the answer")).to_have_count(0)
    await expect(page.get_by_text("Octopuses have three hearts and blue blood.")).to_be_visible()
    await expect(page).to_have_url(re.compile(r"/chat/chs_"))
    await expect(page).to_have_title("Tell me an octopus fact · agent-ui")

    upstream.push(Step(text=[f"on{i} " for i in range(600)], rate=40))  # fifteen seconds unless stopped
    await ask(page, "Now talk for a long time")
    await expect(page.get_by_text(re.compile(r"on3 "))).to_be_visible()
    await page.reload()  # a running answer keeps streaming in after a reload
    await expect(page.get_by_text(re.compile(r"on40 "))).to_be_visible(timeout=10_000)
    await page.get_by_role("button", name="Stop").click()
    await expect(page.get_by_text("Stopped.")).to_be_visible()
    partial = await page.get_by_text(re.compile(r"^on0 ")).inner_text()
    assert "on599" not in partial

    await page.reload()
    thread = page.locator(".chat-user-bubble")
    await expect(thread.filter(has_text="Tell me an octopus fact")).to_be_visible()
    await expect(page.get_by_text("Octopuses have three hearts and blue blood.")).to_be_visible()
    await expect(thread.filter(has_text="Now talk for a long time")).to_be_visible()
    await expect(page.get_by_text("Stopped.")).to_be_visible()
    assert await page.get_by_text(re.compile(r"^on0 ")).inner_text() == partial
    await expect(page.locator(".chat-session", has_text="Tell me an octopus fact")).to_be_visible()  # in the list


async def test_tools_branches_edit_and_copy(live_url: str, browser: Browser, upstream: ScriptedUpstream) -> None:
    async with opened(browser, LAPTOP, clipboard=True) as page:
        await register(page, live_url, "brancher@example.com")

        upstream.push(Step(tool_calls=[("calculator", {"expression": "6*7"})]), Step(text=words("6 times 7 is 42.")))
        await ask(page, "What is 6 times 7?")
        await answered(page, "6 times 7 is 42.")
        await expect(page.locator(".chat-answer .q-expansion-item", has_text="calculator")).to_be_visible()
        upstream.push(Step(text=words("Octopuses have three hearts.")))
        await ask(page, "Tell me an octopus fact")  # no tool
        await answered(page, "Octopuses have three hearts.")
        upstream.push(Step(text=words("Half of 42 is 21.")))
        await ask(page, "And half of that product?")  # a follow-up after the tool answer
        await answered(page, "Half of 42 is 21.")
        assert any("6 times 7 is 42." in str(m["content"]) for m in upstream.requests[-1]["messages"])

        # Regenerate: the old answer stays as version 1.
        upstream.push(Step(text=words("A half of 42 makes 21.")))
        await page.get_by_role("button", name="Regenerate").last.click()
        await answered(page, "A half of 42 makes 21.")
        await expect(page.get_by_text("Half of 42 is 21.")).to_have_count(0)
        last = page.locator(".chat-answer").last
        await expect(last.get_by_text("2/2")).to_be_visible()
        await last.get_by_role("button", name="Previous answer").click()
        await expect(page.get_by_text("Half of 42 is 21.")).to_be_visible()
        await expect(page.locator(".chat-answer").last.get_by_text("1/2")).to_be_visible(timeout=15_000)  # 2 workers
        await page.locator(".chat-answer").last.get_by_role("button", name="Next answer").click()
        await expect(page.get_by_text("A half of 42 makes 21.")).to_be_visible()

        # Edit the last question: a new version of it beside the old one, answered anew.
        upstream.push(Step(text=[CODE]))
        await page.get_by_role("button", name="Edit message").last.click()
        editor = page.locator(".chat-user-editor textarea")
        await editor.fill("Write an add function in Python")
        await page.get_by_role("button", name="Save & send").click()
        await answered(page, "Here is one:")
        question = page.locator(".chat-user").last
        await expect(question.get_by_text("Write an add function in Python")).to_be_visible()
        await expect(question.get_by_text("2/2")).to_be_visible()
        await question.get_by_role("button", name="Previous version").click()
        await expect(page.get_by_text("And half of that product?")).to_be_visible()
        await expect(page.get_by_text("Here is one:")).to_have_count(0)
        await page.locator(".chat-user").last.get_by_role("button", name="Next version").click()
        await expect(page.get_by_text("Here is one:")).to_be_visible()

        # The code block: a box with its language and a copy button that fills the clipboard and says so.
        box = page.locator(".chat-code").last
        await expect(box.locator(".chat-code-lang")).to_have_text("python")
        await box.get_by_role("button", name="Copy code").click()
        await toast(page, "Copied")
        assert await clipboard(page) == "def add(a, b):\n    return a + b"
        await expect(page.locator(".q-notification", has_text="Copied")).to_have_count(0)  # gone by itself
        await page.get_by_role("button", name="Copy answer").last.click()
        await toast(page, "Copied")
        assert await clipboard(page) == CODE
        await screenshots(page, "chat")


async def test_the_composer_stays_in_view_and_the_thread_follows_the_answer(
    live_url: str, browser: Browser, upstream: ScriptedUpstream
) -> None:
    async with opened(browser, LAPTOP) as page:
        await register(page, live_url, "scroller@example.com")
        composer = page.get_by_placeholder(re.compile("Ask anything"))
        chats, toggle = page.locator(".chat-sessions"), page.get_by_role("button", name="Show or hide chats")
        await expect(chats).to_be_visible()
        thread_width = (await page.locator(".chat-main").bounding_box() or {"width": 0})["width"]
        await toggle.click()  # the list folds away and the thread takes its width
        await expect(chats).to_be_hidden()
        assert (await page.locator(".chat-main").bounding_box() or {"width": 0})["width"] > thread_width + 200
        await page.reload()  # and stays folded
        await expect(page.get_by_text("Start a conversation")).to_be_visible()
        await expect(chats).to_be_hidden()
        await toggle.click()
        await expect(chats).to_be_visible()
        for turn in range(6):
            upstream.push(Step(text=words(f"Answer {turn}: " + "a fairly long sentence to fill the thread. " * 8)))
            await ask(page, f"Question {turn}")
            await answered(page, f"Answer {turn}:")
            await expect(composer).to_be_in_viewport()
            await expect(page.get_by_text(f"Answer {turn}:")).to_be_in_viewport()
        # Only the thread scrolls: the page itself never does.
        assert await page.evaluate("document.scrollingElement.scrollHeight <= window.innerHeight")

        # A long answer: the thread follows it while it streams ...
        upstream.push(Step(text=[f"line {i}\n\n" for i in range(60)], rate=15))
        await ask(page, "Count slowly")
        await expect(page.get_by_text("line 20", exact=True)).to_be_in_viewport()
        await expect(page.get_by_text("line 30", exact=True)).to_be_in_viewport()
        # ... until the reader scrolls up; then a button brings the newest text back.
        await page.locator(".chat-scroll").hover()
        await page.mouse.wheel(0, -3000)
        jump = page.get_by_role("button", name="Jump to the latest message")
        await expect(jump).to_be_visible()
        await answered(page, "line 59")
        await expect(page.get_by_text("line 59", exact=True)).not_to_be_in_viewport()
        await jump.click()
        await expect(page.get_by_text("line 59", exact=True)).to_be_in_viewport()
        await expect(jump).to_be_hidden()
        await expect(composer).to_be_in_viewport()


async def test_a_phone_gets_the_whole_width_and_the_chats_in_a_sheet(
    live_url: str, browser: Browser, upstream: ScriptedUpstream
) -> None:
    async with opened(browser, PHONE) as page:
        await register(page, live_url, "phone@example.com")
        sheet = page.locator(".chat-sessions")
        await expect(sheet).to_be_hidden()
        for turn in range(3):
            upstream.push(Step(text=[CODE if turn == 1 else f"Answer {turn}: " + "words to wrap around. " * 12]))
            await ask(page, f"Question {turn}")
            await answered(page, "Here is one:" if turn == 1 else f"Answer {turn}:")
        composer = page.get_by_placeholder(re.compile("Ask anything"))
        await expect(composer).to_be_in_viewport()
        bounds = await page.locator(".chat-composer").bounding_box()
        assert bounds is not None and bounds["y"] + bounds["height"] >= PHONE["height"] - 8  # at the bottom
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page is {width} px wide"
        await expect(sheet).to_be_hidden()

        await page.get_by_role("button", name="Show or hide chats").click()
        await expect(sheet).to_be_visible()
        await expect(sheet.locator(".chat-session", has_text="Question 0")).to_be_visible()
        await page.get_by_role("button", name="Close chats").click()
        await expect(sheet).to_be_hidden()
        await page.get_by_role("button", name="Show or hide chats").click()
        await sheet.get_by_role("button", name="New chat").click()
        await expect(page.get_by_text("Start a conversation")).to_be_visible()
        await expect(sheet).to_be_hidden()
