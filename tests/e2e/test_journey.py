"""Register → sign in → create an API key in Settings (copied to the clipboard) → call /api/v1/auth/me with it →
revoke it with Enter; an admin's grant from another browser shows in the user's header without a reload."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from tests.e2e.browser import register, screenshots

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
    await page.get_by_role("button", name=f"Account: {EMAIL}").click()
    await page.get_by_text("Sign out").click()
    await expect(page).to_have_url(re.compile(r"/login"))
    await page.get_by_label("Email").fill(EMAIL)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_text("Start a conversation")).to_be_visible()

    await page.get_by_role("link", name="Settings").click()
    await expect(page).to_have_url(re.compile(r"/settings"))
    await expect(page).to_have_title("Settings · agent-ui")
    await page.get_by_label("Key name").fill("e2e key")
    await page.get_by_role("button", name="Create key").click()
    await expect(page.get_by_text("Copy it now")).to_be_visible()
    key = await page.get_by_label("Your API key").input_value()
    assert re.fullmatch(r"sk_[A-Za-z0-9_-]{32,}", key)
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_url)
    await page.get_by_role("button", name="Copy").click()
    await expect(page.get_by_text("Copied", exact=True)).to_be_visible()
    assert await page.evaluate("navigator.clipboard.readText()") == key
    await page.get_by_role("button", name="Done").click()
    await expect(page.get_by_text("e2e key")).to_be_visible()
    await screenshots(page, "settings")

    async with httpx.AsyncClient(base_url=live_url) as http:
        me = await http.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {key}"})
    assert me.status_code == 200
    assert me.json()["email"] == EMAIL and me.json()["role"] == "admin"

    await page.get_by_role("button", name="Revoke e2e key").click()
    await expect(page.locator(".q-dialog .q-card")).to_be_focused()  # once the dialog has opened
    await page.keyboard.press("Enter")  # the dialog's main button
    await expect(page.get_by_text("No keys yet.")).to_be_visible()
    async with httpx.AsyncClient(base_url=live_url) as http:
        assert (await http.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {key}"})).status_code == 401


async def test_a_grant_from_another_browser_shows_in_the_header_at_once(
    live_url: str, page: Page, browser: Browser
) -> None:
    await register(page, live_url, "boss@example.com")  # the first account: the admin
    member_context = await browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        member = await member_context.new_page()
        await register(member, live_url, "member@example.com")
        await member.get_by_role("link", name="Settings").click()
        badge = member.locator("header").get_by_text(re.compile(r"credits$"))
        await expect(badge).to_have_text("10.0000 credits")

        await page.get_by_role("link", name="Users").click()
        await expect(page).to_have_title("Users · agent-ui")
        row = page.locator(".q-card > .row", has_text="member@example.com")
        await row.get_by_role("button", name="Grant").click()
        amount = page.locator(".q-dialog").get_by_label("Credits")
        await amount.fill("2.5")
        await amount.press("Enter")  # Enter grants, as the dialog's button does
        await expect(row.get_by_text("12.5000 credits")).to_be_visible()

        await expect(badge).to_have_text("12.5000 credits")  # the member's page, never reloaded
    finally:
        await member_context.close()
