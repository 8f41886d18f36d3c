"""The MCP acceptance in a real browser, on the local backend: a user saves a Claude Code key in Settings, creates
an `agents` sandbox, and in its terminal `claude mcp list` shows agent-ui's tool server connected through the
bridge; the database holds no plaintext key. Screenshot: docs/screenshots/agents-terminal-{desktop,phone}.png."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.e2e.browser import register, screenshots
from tests.e2e.test_sandbox_journey import run, screen
from tests.live_server import live_server

pytestmark = pytest.mark.e2e
CLAUDE_KEY = "sk-ant-api03-journey-Zq8vN3mK7tR2wX9y-0042"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "live-data"


@pytest.fixture
def local_url(data_dir: Path) -> Iterator[str]:
    env = {"AGENT_UI_SANDBOX__BACKEND": "local", "AGENT_UI_LLM__LOCAL__ENABLED": "false"}
    with live_server(data_dir, extra_env=env) as server:
        yield server.url


async def test_claude_code_in_an_agents_sandbox_reaches_our_tool_server(
    local_url: str, data_dir: Path, page: Page
) -> None:
    await register(page, local_url, "agent@example.com")
    await page.goto(local_url + "/settings")
    claude = page.get_by_test_id("integration-claude_code")
    await claude.get_by_label("Claude Code API key").fill(CLAUDE_KEY)
    await claude.get_by_role("button", name="Save").click()
    await expect(claude.get_by_text("sk-...0042", exact=True)).to_be_visible()

    await page.get_by_role("link", name="Sandboxes").click()
    await page.get_by_label("Template").click()
    await page.get_by_role("option", name=re.compile("Agents")).click()
    await page.get_by_role("button", name="Create sandbox").click()
    await expect(page).to_have_url(re.compile(r"/sandboxes/sbx_"), timeout=120_000)  # the first builds the rootfs
    await expect(screen(page)).to_contain_text("$")
    await run(page, "claude mcp list")
    await expect(screen(page)).to_contain_text(re.compile(r"agent-ui.*Connected"), timeout=60_000)
    await screenshots(page, "agents-terminal", reload=False)

    with sqlite3.connect(data_dir / "agent-ui.db") as db:
        dumped = "\n".join(db.iterdump())
    assert "agent_mcp_settings" in dumped and CLAUDE_KEY not in dumped and "journey-Zq8vN3" not in dumped
