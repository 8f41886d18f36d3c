"""In the browser, with no Docker engine in play (the local backend): create a sandbox, run Python, see 42,
upload a file, use it from a command, download it back, and destroy it (Enter confirms) while the header's
balance follows the settlement without a reload."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.e2e.browser import register, screenshots
from tests.live_server import live_server

pytestmark = pytest.mark.e2e


@pytest.fixture
def local_sandbox_url(tmp_path: Path) -> Iterator[str]:
    env = {"AGENT_UI_SANDBOX__BACKEND": "local", "AGENT_UI_SANDBOX__WARM_POOL__LOCAL": "1",
           "AGENT_UI_LLM__LOCAL__ENABLED": "false"}  # fmt: skip
    with live_server(tmp_path / "live-data", extra_env=env) as server:
        yield server.url


async def test_run_code_and_move_files_in_a_sandbox(local_sandbox_url: str, page: Page, tmp_path: Path) -> None:
    await register(page, local_sandbox_url, "coder@example.com")

    await page.get_by_role("link", name="Sandboxes").click()
    await expect(page.get_by_text("No sandboxes yet")).to_be_visible()
    await expect(page.get_by_text(re.compile("runs on: local backend"))).to_be_visible()
    await page.get_by_role("button", name="Create sandbox").click()
    await expect(page).to_have_url(re.compile(r"/sandboxes/sbx_"))

    terminal = page.locator(".nicegui-log")
    command = page.get_by_placeholder('python3 -c "print(6*7)"')
    await command.fill('python3 -c "print(6*7)"')
    await command.press("Enter")
    await expect(terminal.get_by_text("42", exact=True)).to_be_visible()
    await expect(terminal.get_by_text(re.compile(r"^exit 0 · \d+ ms$"))).to_be_visible()

    upload = tmp_path / "data.csv"
    upload.write_text("n\n3\n4\n")
    await page.locator("input[type=file]").set_input_files(upload)
    await expect(page.get_by_text("Uploaded data.csv")).to_be_visible()
    await command.fill("python3 -c \"import csv; print(sum(int(r['n']) for r in csv.DictReader(open('data.csv'))))\"")
    await command.press("Enter")
    await expect(terminal.get_by_text("7", exact=True)).to_be_visible()

    await command.fill("mkdir -p out && python3 -c \"open('out/report.txt','w').write('sum=7\\n')\"")
    await command.press("Enter")
    folder = page.get_by_role("link", name="out")
    await expect(folder).to_be_visible()
    await folder.click()
    await expect(page.get_by_text("/workspace/out")).to_be_visible()
    async with page.expect_download() as waiting:
        await page.get_by_role("button", name="Download report.txt").click()
    download = await waiting.value
    assert download.suggested_filename == "report.txt"
    saved = tmp_path / "report.txt"
    await download.save_as(saved)
    assert saved.read_text() == "sum=7\n"
    await screenshots(page, "sandbox", reload=False)  # the terminal's output does not survive a reload yet

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
