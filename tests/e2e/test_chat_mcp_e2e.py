"""Choosing MCP servers in the chat composer, in a real browser: the admin's notes server (stdio, added over the API)
shows in the composer's picker with its tool count; a tool call on it shows its card with what the server said;
unchecked, its tools are not offered; on a phone the picker and the card fit the screen. Screenshots:
docs/screenshots/chat-mcp-{desktop,phone}.png (the picker open over a chat with an MCP tool card)."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.e2e.browser import DESKTOP, PASSWORD, PHONE, SCREENSHOTS, register, settled
from tests.upstream import ScriptedUpstream, Step, words

pytestmark = pytest.mark.e2e
EMAIL = "admin@example.com"
NOTES_SERVER = Path(__file__).resolve().parents[1] / "services" / "mcp" / "servers" / "notes_server.py"


async def add_notes_server(base_url: str) -> dict[str, Any]:
    """The notes server registered by the admin over the REST API (connected once: its tools are listed)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        login = await client.post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
        assert login.status_code == 200, login.text
        client.cookies.clear()
        created = await client.post(
            "/api/v1/agent/mcp/servers",
            json={"name": "notes", "transport": "stdio", "command": sys.executable, "args": [str(NOTES_SERVER)]},
            headers={"Authorization": f"Bearer {login.json()['access_token']}"},
        )
        assert created.status_code == 201, created.text
        server: dict[str, Any] = created.json()
        assert server["status"] == "ok", server
        return server


async def ask(page: Page, text: str) -> None:
    box = page.get_by_placeholder(re.compile("Ask anything"))
    await box.fill(text)
    await box.press("Enter")


async def answered(page: Page, text: str) -> None:
    await expect(page.get_by_text(text)).to_be_visible()
    await expect(page.get_by_role("button", name="Send")).to_be_visible()


def offered(request: dict[str, Any]) -> set[str]:
    return {tool["function"]["name"] for tool in request.get("tools") or []}


async def test_pick_mcp_servers_and_see_a_tool_card(live_url: str, page: Page, upstream: ScriptedUpstream) -> None:
    await register(page, live_url, EMAIL)
    await expect(page.get_by_role("button", name="Attach resources")).to_be_visible()
    assert await page.get_by_role("button", name=re.compile("^MCP servers")).count() == 0  # none yet: no picker
    server = await add_notes_server(live_url)
    await page.reload()
    picker = page.get_by_role("button", name="MCP servers: all 1 of 1 on")
    await expect(picker).to_be_visible()

    upstream.push(Step(tool_calls=[("notes_add_note", {"text": "x"})]), Step(text=words("Noted “x” for you.")))
    await ask(page, "Please note x")
    await answered(page, "Noted “x” for you.")
    assert "notes_add_note" in offered(upstream.requests[-2])
    card = page.locator(".tool-card").filter(has_text="notes · notes_add_note")
    await expect(card).to_be_visible()
    await card.locator(".q-expansion-item__container > .q-item").click()
    await expect(card.get_by_text("noted: x", exact=True)).to_be_visible()

    await picker.click()
    menu = page.locator(".q-menu")
    notes = menu.get_by_role("checkbox", name="notes")
    await expect(notes).to_be_checked()
    await expect(menu.get_by_text(f"{server['tool_count']} tools", exact=True)).to_be_visible()
    await expect(menu.get_by_role("link", name="Manage servers")).to_be_visible()

    # At desktop and phone sizes: the chat with its tool card open, and the picker open over the composer.
    for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        await page.set_viewport_size(viewport)  # type: ignore[arg-type]
        await settled(page)
        await card.locator(".q-expansion-item__container > .q-item").click()
        await expect(card.get_by_text("noted: x", exact=True)).to_be_visible()
        await page.get_by_role("button", name=re.compile("^MCP servers")).click()
        await expect(menu.get_by_role("checkbox", name="notes")).to_be_visible()
        await settled(page, reload=False)
        assert await page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        box = await menu.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"]
        await page.screenshot(path=str(SCREENSHOTS / f"chat-mcp-{label}.png"))

    # Unchecked, the server's tools are not offered (the choice holds for the page's next turns).
    await menu.get_by_role("checkbox", name="notes").click()
    await expect(menu.get_by_role("checkbox", name="notes")).not_to_be_checked()
    await page.keyboard.press("Escape")
    await expect(menu).to_be_hidden()
    off = page.get_by_role("button", name="MCP servers: 0 of 1 on")
    await expect(off).to_be_visible()
    await expect(off.locator(".q-badge")).to_have_text("0")  # what is on, once not all
    upstream.push(Step(text=words("No notes this time.")))
    await ask(page, "Anything else?")
    await answered(page, "No notes this time.")
    tools = offered(upstream.requests[-1])
    assert "calculator" in tools and not any(name.startswith("notes_") for name in tools)
