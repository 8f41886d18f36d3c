"""Steps the browser journeys share."""

from __future__ import annotations

from playwright.async_api import Page, expect

PASSWORD = "correct horse battery"


async def register(page: Page, base_url: str, email: str, password: str = PASSWORD) -> None:
    """Create an account through the register page and land signed in on the chat."""
    await page.goto(base_url + "/register")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password (8 characters or more)").fill(password)
    await page.get_by_label("Repeat password").fill(password)
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_text("Start a conversation")).to_be_visible()
