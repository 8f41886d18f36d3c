"""Resources in a real browser: two files dropped on the upload area at once follow their ingestion to ready, a
picture and a private address are refused with plain notifications, pasted text is added, a search marks the
matching words and opens the passage beside it (the hit's span marked and in view), and a delete is confirmed with
Enter; at desktop and phone widths."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.e2e.browser import PHONE, register, screenshots, settled
from tests.e2e.test_accessible_names import nameless_buttons
from tests.live_server import live_server
from tests.services.rag.files import PAGE7_SENTENCE, png_bytes, ten_page_pdf

pytestmark = pytest.mark.e2e
NOTES = "# Field notes\n\nThe kingfisher nests in the clay bank by the mill race.\n"
# A drop as the browser makes it: a DataTransfer holding real File objects, dragged over the uploader and dropped.
DROP = """async ([files]) => {
  const transfer = new DataTransfer();
  for (const [name, type, base64] of files) {
    const bytes = Uint8Array.from(atob(base64), c => c.charCodeAt(0));
    transfer.items.add(new File([bytes], name, {type}));
  }
  const uploader = document.querySelector('.q-uploader');
  uploader.dispatchEvent(new DragEvent('dragover', {bubbles: true, cancelable: true, dataTransfer: transfer}));
  await new Promise(resolve => requestAnimationFrame(resolve));
  const zone = uploader.querySelector('.q-uploader__dnd') || uploader;
  zone.dispatchEvent(new DragEvent('drop', {bubbles: true, cancelable: true, dataTransfer: transfer}));
}"""


@pytest.fixture
def rag_url(tmp_path: Path) -> Iterator[str]:
    with live_server(tmp_path / "live-data", extra_env={"AGENT_UI_LLM__LOCAL__ENABLED": "false"}) as server:
        yield server.url


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def toast(page: Page, text: str | re.Pattern[str]) -> None:
    await expect(page.locator(".q-notification", has_text=text).last).to_be_visible()


def row(page: Page, title: str):  # type: ignore[no-untyped-def]
    return page.locator(".resources-row", has=page.get_by_text(title, exact=True))


async def test_add_search_and_open_a_passage(rag_url: str, page: Page, tmp_path: Path) -> None:
    await register(page, rag_url, "librarian@example.com")
    await page.get_by_role("link", name="Resources").click()
    await expect(page).to_have_title("Resources · agent-ui")
    await expect(page.get_by_text("Nothing here yet")).to_be_visible()

    files = [["handbook.pdf", "application/pdf", b64(ten_page_pdf())],
             ["notes.md", "text/markdown", b64(NOTES.encode())]]  # fmt: skip
    await page.evaluate(DROP, [files])
    handbook, notes = row(page, "handbook"), row(page, "notes")
    await expect(handbook).to_be_visible()
    await expect(notes).to_be_visible()
    await expect(handbook.get_by_text("ready", exact=True)).to_be_visible(timeout=60_000)
    await expect(notes.get_by_text("ready", exact=True)).to_be_visible(timeout=60_000)
    meta = re.compile(r"^PDF · 10 pages · \d+ chunks · [\d.]+ KB · added .* UTC$")
    await expect(handbook.get_by_text(meta)).to_be_visible()
    await expect(handbook.get_by_role("progressbar")).to_be_hidden()

    chooser = page.locator("input[type=file]")
    await chooser.set_input_files(files=[{"name": "photo.png", "mimeType": "image/png", "buffer": png_bytes()}])
    await toast(page, "photo.png was not added: add PDF, Word (.docx), HTML")  # the browser refused its name
    await chooser.set_input_files(files=[{"name": "photo.txt", "mimeType": "text/plain", "buffer": png_bytes()}])
    await toast(page, "photo.txt was not added: the file is a PNG image, which cannot be indexed")  # the server: 415
    address = page.get_by_label("Web page address")
    await address.fill("http://127.0.0.1:9/private")
    await address.press("Enter")
    await toast(page, re.compile(r"cannot be fetched: 127\.0\.0\.1 leads to a private or local address"))

    await page.get_by_role("button", name="Paste text").click()
    await page.get_by_label("Title (optional)").fill("Tea")
    await page.get_by_label("Text", exact=True).fill("The kettle whistles at dawn. <b>not bold</b>")
    await page.get_by_role("button", name="Add text").click()
    await expect(row(page, "Tea").get_by_text("ready", exact=True)).to_be_visible(timeout=60_000)

    query = page.get_by_label("Search your resources")
    await query.fill("heron ledger Quillbrook")
    await query.press("Enter")
    hit = page.locator(".resources-hit").first
    await expect(hit).to_contain_text("handbook")
    await expect(hit).to_contain_text("page 7")
    await expect(hit.locator("mark", has_text="Quillbrook")).to_be_visible()
    await screenshots(page, "resources", reload=False)

    await page.set_viewport_size(PHONE)
    await query.fill("heron ledger Quillbrook")
    await query.press("Enter")
    await page.locator(".resources-hit").first.click()
    panel = page.locator(".resources-passage")
    await expect(panel.get_by_text("page 7 of 10")).to_be_visible()
    marked = panel.locator("mark")
    await expect(marked).to_contain_text(PAGE7_SENTENCE.split()[1])
    await expect(marked).to_be_in_viewport()
    await settled(page, reload=False)
    box = await panel.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 1  # fits the phone
    await page.screenshot(path=str(tmp_path / "passage-phone.png"))  # to look at when the layout changes
    await page.set_viewport_size({"width": 1366, "height": 768})
    await settled(page, reload=False)
    await page.screenshot(path=str(tmp_path / "passage-desktop.png"))
    await page.get_by_role("button", name="Close the passage").click()
    await expect(panel).to_be_hidden()

    await query.fill("kettle")
    await query.press("Enter")
    await expect(page.locator(".resources-hit").first.get_by_text("<b>not bold</b>", exact=False)).to_be_visible()
    assert await nameless_buttons(page) == []  # rows, hits and the uploader: every button is announced by name
    await page.get_by_role("button", name="Delete Tea").click()
    await expect(page.locator(".q-dialog .q-card")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(row(page, "Tea")).to_have_count(0)
    await expect(row(page, "handbook")).to_be_visible()
