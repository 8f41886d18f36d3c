"""A mistyped address shows the app's own 404 page, in its frame when signed in, with a way home."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from tests.e2e.browser import register

pytestmark = pytest.mark.e2e


async def test_the_404_page_leads_home_signed_out_and_in(live_url: str, page: Page) -> None:
    response = await page.goto(live_url + "/no/such/page")
    assert response is not None and response.status == 404
    await expect(page.get_by_text("Page not found")).to_be_visible()
    await expect(page.get_by_text("/no/such/page", exact=True)).to_be_visible()
    await expect(page.get_by_text("HTTPException")).to_have_count(0)
    await page.get_by_role("link", name="Go home").click()
    await expect(page).to_have_url(re.compile(r"/login"))  # home, which asks a stranger to sign in

    await register(page, live_url, "lost@example.com")
    response = await page.goto(live_url + "/setings")
    assert response is not None and response.status == 404
    await expect(page.get_by_text("Page not found")).to_be_visible()
    await expect(page.get_by_text("Settings", exact=True).first).to_be_visible()  # the app's navigation
    await page.get_by_role("link", name="Go home").click()
    await expect(page.get_by_text("Start a conversation")).to_be_visible()
