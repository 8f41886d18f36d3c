"""In the browser, with no Docker engine in play (the local backend): create a sandbox, work in its terminal
(Python's prompt gives 42), upload a file and use it from a command, see the files a command made and download
one, reload and find the same terminal with what it showed, open and close a second terminal, and destroy the
sandbox (Enter confirms) while the header's balance follows the settlement without a reload."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Locator, Page, expect

from tests.e2e.browser import register, screenshots
from tests.live_server import live_server

pytestmark = pytest.mark.e2e


@pytest.fixture
def local_sandbox_url(tmp_path: Path) -> Iterator[str]:
    env = {"AGENT_UI_SANDBOX__BACKEND": "local", "AGENT_UI_SANDBOX__WARM_POOL__LOCAL": "1",
           "AGENT_UI_LLM__LOCAL__ENABLED": "false"}  # fmt: skip
    with live_server(tmp_path / "live-data", extra_env=env) as server:
        yield server.url


def screen(page: Page) -> Locator:
    """The text of the terminal shown (the others are hidden behind it)."""
    return page.locator(".xterm-rows").filter(visible=True)


async def run(page: Page, line: str) -> None:
    """Type a line into the terminal shown, as a user would, and press Enter."""
    await page.locator(".xterm").filter(visible=True).click()
    await page.keyboard.type(line)
    await page.keyboard.press("Enter")


async def until(page: Page, url: str, ready: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
    """The sandbox's terminals from the REST API (with the page's session), once ``ready`` holds for them."""
    found: list[dict[str, Any]] = []
    for _ in range(50):
        response = await page.request.get(url)
        found = await response.json()
        if ready(found):
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"the terminals never got there: {found}")


async def test_work_in_a_sandbox_terminal_and_move_files(local_sandbox_url: str, page: Page, tmp_path: Path) -> None:
    await register(page, local_sandbox_url, "coder@example.com")

    await page.get_by_role("link", name="Sandboxes").click()
    await expect(page.get_by_text("No sandboxes yet")).to_be_visible()
    await expect(page.get_by_text(re.compile("runs on: local backend"))).to_be_visible()
    await page.get_by_role("button", name="Create sandbox").click()
    await expect(page).to_have_url(re.compile(r"/sandboxes/sbx_"))
    sandbox_url = page.url

    tabs = page.get_by_role("tab")
    await expect(tabs).to_have_count(1)  # a terminal was opened for the new sandbox
    await expect(tabs.first).to_contain_text("Terminal 1")
    await expect(screen(page)).to_contain_text("$")
    await run(page, "python3")
    await expect(screen(page)).to_contain_text(">>>")
    await run(page, "6*7")
    await expect(screen(page).get_by_text(re.compile(r"^42\s*$"))).to_be_visible()
    await run(page, "exit()")
    await run(page, "mkdir -p out && cd out")
    await expect(screen(page)).to_contain_text("/workspace/out$")
    files = page.locator(".q-card").filter(has=page.get_by_text("Files", exact=True))
    folder = files.get_by_role("link", name="out")
    await expect(folder).to_be_visible()  # the file list was read again once the terminal went quiet

    upload = tmp_path / "data.csv"
    upload.write_text("n\n3\n4\n")
    await page.locator("input[type=file]").set_input_files(upload)
    await expect(page.get_by_text("Uploaded data.csv")).to_be_visible()
    await run(page, "python3 -c \"import csv; s = sum(int(r['n']) for r in csv.DictReader(open('../data.csv'))); "
                    "print(s); open('report.txt', 'w').write(f'sum={s}\\n')\"")  # fmt: skip
    await expect(screen(page).get_by_text(re.compile(r"^7\s*$"))).to_be_visible()
    await folder.click()
    await expect(files.get_by_text("/workspace/out")).to_be_visible()
    async with page.expect_download() as waiting:
        await page.get_by_role("button", name="Download report.txt").click()
    download = await waiting.value
    assert download.suggested_filename == "report.txt"
    saved = tmp_path / "report.txt"
    await download.save_as(saved)
    assert saved.read_text() == "sum=7\n"
    await screenshots(page, "sandbox", reload=False)

    await page.reload()  # the same terminal, attached again: what it showed comes back first
    await expect(tabs).to_have_count(1)
    await expect(screen(page).get_by_text(re.compile(r"^42\s*$"))).to_be_visible()
    await expect(screen(page)).to_contain_text(re.compile(r"/workspace/out\$\s*$"), use_inner_text=True)  # its prompt
    await run(page, "pwd")
    await expect(screen(page)).to_contain_text(re.compile(r"\$ pwd\n/workspace/out\n"), use_inner_text=True)
    api = f"{local_sandbox_url}/api/v1/agent/sandboxes/{sandbox_url.rsplit('/', 1)[-1]}/terminals"
    await until(page, api, lambda found: [t["attached"] for t in found] == [1])  # the page before detached

    await page.set_viewport_size({"width": 390, "height": 844})  # the program hears of the xterm's new size
    narrow = await until(page, api, lambda found: found[0]["cols"] < 50)
    await run(page, "stty size")
    await expect(screen(page)).to_contain_text(f"stty size\n{narrow[0]['rows']} {narrow[0]['cols']}\n",
                                               use_inner_text=True)  # fmt: skip
    await page.set_viewport_size({"width": 1280, "height": 800})
    await until(page, api, lambda found: found[0]["cols"] > 60)
    await screenshots(page, "sandbox-terminal", focus=page.locator(".q-card").filter(has=page.get_by_role("tab")))

    await page.get_by_role("button", name="New terminal").click()
    await expect(tabs).to_have_count(2)
    await expect(tabs.nth(1)).to_have_attribute("aria-selected", "true")
    await expect(screen(page)).to_contain_text("sandbox:/workspace$")
    await page.keyboard.type("echo second-$((6*7))")  # the terminal shown has the keyboard
    await page.keyboard.press("Enter")
    await expect(screen(page).get_by_text(re.compile(r"^second-42\s*$"))).to_be_visible()
    await expect(screen(page)).not_to_contain_text("python3")  # a terminal of its own
    await tabs.first.click()
    await expect(screen(page)).to_contain_text("python3")
    await tabs.nth(1).click()
    await expect(screen(page)).to_contain_text("second-42")
    await run(page, "exit")
    await expect(screen(page)).to_contain_text("[process exited")
    await expect(tabs.nth(1)).to_contain_text("(exited)")
    await page.get_by_role("button", name="Close Terminal 2").click()
    await expect(tabs).to_have_count(1)
    await expect(tabs.first).to_have_attribute("aria-selected", "true")
    await expect(screen(page).get_by_text(re.compile(r"^42\s*$"))).to_be_visible()

    await page.get_by_role("link", name="Sandboxes").click()
    await expect(page).to_have_title("Sandboxes · agent-ui")
    badge = page.locator("header").get_by_text(re.compile(r"credits$"))
    await expect(badge).to_have_text(re.compile(r"^\d"))
    while_held = await badge.inner_text()  # the sandbox's hold is out of what is available
    await page.get_by_role("button", name=re.compile(r"^Destroy sbx_")).click()
    await expect(page.locator(".q-dialog .q-card")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.get_by_text("No sandboxes yet")).to_be_visible()
    await expect(badge).not_to_have_text(while_held)  # settled: the hold is back, less the minutes it cost
