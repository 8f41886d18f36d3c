"""Steps the browser journeys share."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Locator, Page, expect

PASSWORD = "correct horse battery"


async def register(page: Page, base_url: str, email: str, password: str = PASSWORD) -> None:
    """Create an account through the register page and land signed in on the chat."""
    await page.goto(base_url + "/register")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password (8 characters or more)").fill(password)
    await page.get_by_label("Repeat password").fill(password)
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_text("Start a conversation")).to_be_visible()


SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


async def screenshots(page: Page, name: str, *, focus: Locator | None = None, reload: bool = True) -> None:
    """The page as the README shows it, at desktop and phone sizes (``docs/screenshots/<name>-desktop.png`` and
    ``-phone.png``): loaded afresh at each size as that device would open it (with ``reload`` off, the desktop
    shot keeps what a reload would lose), once transitions have ended, scrolled to ``focus`` if given. The
    journey's own viewport is restored after."""
    size = page.viewport_size
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        await page.set_viewport_size(viewport)
        await settled(page, reload=reload or label == "phone")
        if focus is not None:
            await focus.evaluate("element => element.scrollIntoView({block: 'start'})")
        await page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"))
    if size is not None:
        await page.set_viewport_size(size)
        await settled(page)


async def settled(page: Page, *, reload: bool = True) -> None:
    """Reloaded (if asked), connected, and every finite animation or transition over."""
    if reload:
        await page.reload()
        await page.wait_for_load_state("networkidle")
    await page.evaluate("document.querySelectorAll('.q-notification').forEach(toast => toast.remove())")
    await page.wait_for_function(
        "document.getAnimations().every(a => a.playState !== 'running'"
        " || a.effect?.getTiming().iterations === Infinity)"
    )
