"""Settings → MCP servers and Integrations in a real browser: the admin adds the notes server over stdio (its row
turns ok with its tools), Test lists them, a Claude Code key is saved and shown redacted (never in full), and the
sections fit a phone without scrolling sideways. Screenshots: docs/screenshots/mcp-settings-{desktop,phone}.png."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.e2e.browser import PHONE, register, screenshots

pytestmark = pytest.mark.e2e
NOTES_SERVER = Path(__file__).resolve().parents[1] / "services" / "mcp" / "servers" / "notes_server.py"
TOOLS = re.compile(r"^\d+ tools$")
CLAUDE_KEY = "sk-ant-api03-Zq8vN3mK7tR2wX9yB4cL6pH1jF5dG0sA-abcd"


async def test_add_a_stdio_server_and_a_claude_code_key(live_url: str, page: Page) -> None:
    await register(page, live_url, "admin@example.com")
    await page.goto(live_url + "/settings")
    servers = page.locator("#mcp-servers")
    await expect(servers.get_by_text("No servers yet.")).to_be_visible()

    await servers.get_by_label("Name").fill("notes")
    await servers.get_by_label("Command").fill(sys.executable)
    await servers.get_by_label("Arguments").fill(str(NOTES_SERVER))
    await servers.get_by_label("Environment (optional)").fill("NOTES_TOKEN=tok-secret-123456789")
    await servers.get_by_role("button", name="Add server").click()
    added = page.locator(".q-notification", has_text=re.compile(r"Added notes: \d+ tools\."))
    await expect(added).to_be_visible(timeout=30_000)
    await expect(servers.get_by_text("ok", exact=True)).to_be_visible()
    await expect(servers.get_by_text(TOOLS)).to_be_visible()
    await expect(servers.get_by_text("env NOTES_TOKEN=tok-...6789")).to_be_visible()

    await servers.get_by_role("button", name="Test notes").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog.get_by_text("add_note", exact=True)).to_be_visible(timeout=30_000)
    await expect(dialog.get_by_text("Store a note in this process.")).to_be_visible()
    await dialog.get_by_role("button", name="Close").click()
    await expect(dialog).to_be_hidden()

    integrations = page.locator("#integrations")
    await expect(integrations.get_by_text("only an admin-enabled sandbox network allows")).to_be_visible()
    claude = page.get_by_test_id("integration-claude_code")
    await claude.get_by_label("Claude Code API key").fill(CLAUDE_KEY)
    await claude.get_by_label("Model (optional)").fill("claude-sonnet-4-5")
    await claude.get_by_role("button", name="Save").click()
    await expect(claude.get_by_text("sk-...abcd", exact=True)).to_be_visible()
    await expect(claude.get_by_role("switch", name="Active")).to_be_checked()
    html = await page.content()
    assert CLAUDE_KEY not in html and "tok-secret-123456789" not in html

    await screenshots(page, "mcp-settings", focus=servers)

    # On a phone nothing scrolls sideways and the rows' buttons stay on the screen.
    await page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    await page.reload()
    await expect(servers.get_by_text(TOOLS)).to_be_visible()
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    for button in [
        servers.get_by_role("button", name="Delete notes"),
        claude.get_by_role("button", name="Replace key"),
    ]:
        await button.scroll_into_view_if_needed()
        box = await button.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
