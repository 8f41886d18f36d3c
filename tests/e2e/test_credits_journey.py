"""The header balance drops after a chat turn by the amount shown in that session's usage."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from playwright.async_api import Page, expect

from tests.e2e.browser import register
from tests.upstream import ScriptedUpstream, Step, words

pytestmark = pytest.mark.e2e


async def test_balance_drops_by_the_session_usage(live_url: str, page: Page, upstream: ScriptedUpstream) -> None:
    await register(page, live_url, "payer@example.com")
    badge = page.locator("header").get_by_text(re.compile(r"credits$"))
    await expect(badge).to_have_text("10.0000 credits")

    upstream.push(Step(text=words("Credits are spent per token.")))
    box = page.get_by_placeholder(re.compile("Ask anything"))
    await box.fill("How are credits spent?")
    await box.press("Enter")
    await expect(page.get_by_text("Credits are spent per token.")).to_be_visible()
    usage = page.get_by_text(re.compile(r"tokens · [0-9.]+ credits"))
    await expect(usage).to_be_visible()
    await expect(badge).not_to_have_text("10.0000 credits")

    spent = Decimal(re.search(r"· ([0-9.]+) credits", await usage.inner_text()).group(1))  # type: ignore[union-attr]
    shown = Decimal((await badge.inner_text()).split()[0].replace(",", ""))
    assert spent > 0
    assert shown == Decimal(10) - spent
