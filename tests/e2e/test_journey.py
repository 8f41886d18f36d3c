"""Register → sign in → create an API key in Settings → call /api/v1/auth/me with it."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.async_api import Page, expect

pytestmark = pytest.mark.e2e
EMAIL, PASSWORD = "journey@example.com", "correct horse battery"


async def test_register_login_create_key_and_use_it(live_url: str, page: Page) -> None:
    await page.goto(live_url + "/")
    await expect(page).to_have_url(re.compile(r"/login"))
    await page.get_by_role("link", name="Create one").click()

    await page.get_by_label("Email").fill(EMAIL)
    await page.get_by_label("Password (8 characters or more)").fill(PASSWORD)
    await page.get_by_label("Repeat password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_text("Start a conversation")).to_be_visible()

    # Sign out through the user menu, then sign in again.
    await page.locator("header button").last.click()
    await page.get_by_text("Sign out").click()
    await expect(page).to_have_url(re.compile(r"/login"))
    await page.get_by_label("Email").fill(EMAIL)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_text("Start a conversation")).to_be_visible()

    await page.get_by_text("Settings", exact=True).first.click()
    await expect(page).to_have_url(re.compile(r"/settings"))
    await page.get_by_label("Key name").fill("e2e key")
    await page.get_by_role("button", name="Create key").click()
    await expect(page.get_by_text("Copy it now")).to_be_visible()
    key_text = await page.locator(".q-dialog").get_by_text(re.compile(r"sk_[A-Za-z0-9_-]{32,}")).inner_text()
    key = re.search(r"sk_[A-Za-z0-9_-]{32,}", key_text).group(0)  # type: ignore[union-attr]
    await page.get_by_role("button", name="Done").click()
    await expect(page.get_by_text("e2e key")).to_be_visible()

    async with httpx.AsyncClient(base_url=live_url) as http:
        me = await http.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {key}"})
    assert me.status_code == 200
    assert me.json()["email"] == EMAIL and me.json()["role"] == "admin"
