"""The header balance drops after a chat turn by the amount shown in that session's usage; Settings → Credits
shows that turn as one line titled by its chat, with 4 decimals, and fits a phone."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from playwright.async_api import Page, expect

from tests.e2e.browser import register, screenshots
from tests.upstream import ScriptedUpstream, Step, words

pytestmark = pytest.mark.e2e
FOUR_DECIMALS = re.compile(r"^[+-]?[0-9,]+\.\d{4}$")


async def test_balance_drops_by_the_session_usage(live_url: str, page: Page, upstream: ScriptedUpstream) -> None:
    await register(page, live_url, "payer@example.com")
    badge = page.locator("header").get_by_text(re.compile(r"credits$"))
    await expect(badge).to_have_text("10.0000 credits")

    # One turn, two model calls: the tool call, then the answer.
    upstream.push(Step(tool_calls=[("calculator", {"expression": "6*7"})]), Step(text=words("Credits are spent.")))
    box = page.get_by_placeholder(re.compile("Ask anything"))
    await box.fill("How are credits spent?")
    await box.press("Enter")
    await expect(page.get_by_text("Credits are spent.")).to_be_visible()
    usage = page.get_by_text(re.compile(r"tokens · [0-9.]+ credits"))
    await expect(usage).to_be_visible()
    await expect(badge).not_to_have_text("10.0000 credits")

    spent = Decimal(re.search(r"· ([0-9.]+) credits", await usage.inner_text()).group(1))  # type: ignore[union-attr]
    shown = Decimal((await badge.inner_text()).split()[0].replace(",", ""))
    assert spent > 0
    assert shown == Decimal(10) - spent

    await page.goto(live_url + "/settings#credits")
    lines = page.locator("[data-testid=ledger-line]")
    await expect(lines).to_have_count(2)  # the turn's two calls are one line, then the sign-up grant
    titles = page.locator("[data-testid=ledger-line-title]")
    await expect(titles).to_have_text(["Chat: How are credits spent?", "Sign-up grant"])
    await expect(page.locator("[data-testid=ledger-line-detail]").first).to_contain_text("2 model calls")
    amounts = await page.locator("[data-testid=ledger-line-amount]").all_inner_texts()
    assert amounts[1] == "+10.0000" and Decimal(amounts[0]) == -spent
    assert all(
        FOUR_DECIMALS.match(text) for text in [*amounts, await page.get_by_test_id("credits-balance").inner_text()]
    )
    assert not re.search(r"\b(chs|run|led)_", await page.locator("#credits").inner_text())
    await screenshots(page, "credits", focus=page.locator("#credits"))

    # On a phone nothing is cut off or scrolls sideways.
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.reload()
    await expect(lines).to_have_count(2)
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    for element in [*await lines.all(), *await page.locator("[data-testid=ledger-line-amount]").all()]:
        box_ = await element.bounding_box()
        assert box_ is not None and box_["x"] >= 0 and box_["x"] + box_["width"] <= 390
