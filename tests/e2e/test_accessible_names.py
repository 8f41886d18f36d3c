"""Every button on every main page has an accessible name (its text, aria-label or title), as Chromium's
accessibility tree computes it: icon-only buttons are announced by screen readers as just "button" otherwise.
And every page's tab says which page it is."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from tests.conftest import scripted_llm
from tests.e2e.browser import register
from tests.live_server import live_server
from tests.upstream import ScriptedUpstream, Step, words

pytestmark = pytest.mark.e2e


@pytest.fixture
def app_url(tmp_path: Path, upstream: ScriptedUpstream) -> Iterator[str]:
    """The app with the scripted model and local sandboxes, so that every page has its buttons."""
    env = {"AGENT_UI_LLM": json.dumps(scripted_llm(upstream)), "AGENT_UI_SANDBOX__BACKEND": "local"}
    with live_server(tmp_path / "live-data", extra_env=env) as server:
        yield server.url


async def nameless_buttons(page: Page) -> list[str]:
    """The buttons on the page that Chromium gives no name, each as the start of its HTML."""
    cdp = await page.context.new_cdp_session(page)
    try:
        tree = await cdp.send("Accessibility.getFullAXTree")
        found: list[str] = []
        for node in tree["nodes"]:
            if node.get("ignored") or node.get("role", {}).get("value") != "button":
                continue
            if str(node.get("name", {}).get("value", "")).strip():
                continue
            resolved = await cdp.send("DOM.resolveNode", {"backendNodeId": node["backendDOMNodeId"]})
            html = await cdp.send(
                "Runtime.callFunctionOn",
                {"objectId": resolved["object"]["objectId"], "returnByValue": True,
                 "functionDeclaration": "function() { return this.outerHTML.slice(0, 300) }"},
            )  # fmt: skip
            found.append(html["result"]["value"])
        return found
    finally:
        await cdp.detach()


async def settle(page: Page, url: str) -> None:
    await page.goto(url)
    await expect(page.locator("header")).to_be_visible()
    await page.wait_for_load_state("networkidle")


async def test_every_button_on_every_main_page_has_a_name(
    app_url: str, page: Page, browser: Browser, upstream: ScriptedUpstream
) -> None:
    signed_out = await browser.new_context()
    try:
        anonymous = await signed_out.new_page()
        missing: dict[str, list[str]] = {}
        for path, title in (("/login", "Sign in · agent-ui"), ("/register", "Create account · agent-ui")):
            await anonymous.goto(app_url + path)
            await expect(anonymous.get_by_label("Email")).to_be_visible()
            await expect(anonymous).to_have_title(title)
            missing[path] = await nameless_buttons(anonymous)
    finally:
        await signed_out.close()

    await register(page, app_url, "names@example.com")
    upstream.push(Step(text=words("Hello there, **friend**.")))
    box = page.get_by_placeholder(re.compile("Ask anything"))
    await box.fill("Say hello")
    await box.press("Enter")
    await expect(page.get_by_text("Hello there,")).to_be_visible()
    await expect(page).to_have_url(re.compile(r"/chat/chs_"))
    chat_url = page.url

    await settle(page, app_url + "/sandboxes")
    await page.get_by_role("button", name="Create sandbox").click()
    await expect(page).to_have_url(re.compile(r"/sandboxes/sbx_"))
    sandbox_url = page.url
    await expect(page).to_have_title(re.compile(r"^sbx_\w+ · Sandboxes · agent-ui$"))
    await expect(page.locator(".xterm-rows")).to_contain_text("$")  # the shell's prompt
    await page.locator(".xterm").click()
    await page.keyboard.type("echo hi > note.txt")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("button", name="Download note.txt")).to_be_visible()
    missing["/sandboxes/{id}"] = await nameless_buttons(page)

    await settle(page, app_url + "/settings")
    await page.get_by_label("Key name").fill("named key")
    await page.get_by_role("button", name="Create key").click()
    missing["/settings (new key dialog)"] = await nameless_buttons(page)
    await page.get_by_role("button", name="Done").click()
    await expect(page.get_by_role("button", name="Revoke named key")).to_be_visible()

    # Each page with the tab title it should have (the chat's are the chat page's own: checked there).
    pages = {"/": (app_url + "/", None), "/chat/{id}": (chat_url, None),
             "/sandboxes": (app_url + "/sandboxes", "Sandboxes · agent-ui"),
             "/settings": (app_url + "/settings", "Settings · agent-ui"),
             "/admin/users": (app_url + "/admin/users", "Users · agent-ui"),
             "/generate": (app_url + "/generate", "Generate · agent-ui")}  # fmt: skip
    for name, (url, title) in pages.items():
        await settle(page, url)
        if title is not None:
            await expect(page).to_have_title(title)
        missing[name] = await nameless_buttons(page)
    await page.get_by_role("button", name="Dark mode").click()  # the same pages in dark mode and with a rail
    await page.get_by_role("button", name="Collapse the navigation").click()
    await settle(page, sandbox_url)
    missing["/sandboxes/{id} (rail)"] = await nameless_buttons(page)
    await page.set_viewport_size({"width": 390, "height": 844})  # a phone: the navigation is an overlay
    await settle(page, chat_url)
    missing["/chat/{id} (phone)"] = await nameless_buttons(page)
    off_screen = "document.querySelector('nav[aria-label=Main]').getBoundingClientRect().right <= 0"
    await page.wait_for_function(off_screen)  # closed until asked for, whatever the desktop rail was
    await page.get_by_role("button", name="Navigation").click()
    await page.wait_for_function("document.querySelector('nav[aria-label=Main]').getBoundingClientRect().left >= 0")
    await expect(page.get_by_role("link", name="Settings")).to_be_visible()
    await expect(page.get_by_text("Settings", exact=True)).to_be_visible()  # labels, not the rail's icons alone

    assert {name: buttons for name, buttons in missing.items() if buttons} == {}
