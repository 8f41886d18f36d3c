"""Settings → Voice in a real browser (offline: flite speaks the default voice): choose an espeak-ng voice by typing
part of its name, set the speed with the keyboard, Preview plays it (an <audio> with a data: URI the browser
decodes), Save, and a reload shows both kept; the section fits a phone. Screenshots:
docs/screenshots/voice-settings-{desktop,phone}.png."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.e2e.browser import PHONE, register, screenshots

pytestmark = pytest.mark.e2e
CHOSEN = "espeak-ng · English (UK) · female 2"


async def test_choose_preview_save_and_keep_a_voice(live_url: str, page: Page) -> None:
    await register(page, live_url, "voice@example.com")
    await page.goto(live_url + "/settings")
    section = page.locator("#voice")
    await section.scroll_into_view_if_needed()
    voice = section.get_by_role("combobox", name="Voice")
    # the first voice of the first offline engine of the order (edge, flite, espeak)
    await expect(voice).to_have_value("Default — flite · English (US) · Sarah, female")
    await expect(
        section.get_by_text("Saved: the default voice, flite · English (US) · Sarah, female, at 1.00× speed")
    ).to_be_visible()

    await voice.click()
    await voice.fill("UK")  # the list narrows to what matches
    await expect(page.get_by_role("option", name="Edge · English (UK) · Sonia, female (offline)")).to_be_visible()
    await page.get_by_role("option", name=CHOSEN, exact=True).click()
    await expect(voice).to_have_value(CHOSEN)

    speed = section.get_by_role("slider", name="Speed")
    await expect(speed).to_have_attribute("aria-valuenow", "1")
    handle = speed.locator("[tabindex='0']")  # Quasar puts the keyboard focus on the slider's track
    for value in ("1.05", "1.1", "1.15", "1.2", "1.25", "1.3", "1.35", "1.4", "1.45", "1.5"):  # 0.05 a step
        await handle.press("ArrowRight")
        await expect(speed).to_have_attribute("aria-valuenow", value)
    await expect(section.get_by_text("1.50×", exact=True)).to_be_visible()

    await section.get_by_role("button", name="Preview").click()
    player = section.locator("audio")
    await expect(player).to_have_count(1, timeout=15_000)
    assert (await player.get_attribute("src") or "").startswith("data:audio/mpeg;base64,")
    duration = await player.evaluate(
        "audio => new Promise(done => audio.readyState >= 1 ? done(audio.duration)"
        " : audio.addEventListener('loadedmetadata', () => done(audio.duration)))"
    )
    assert 1.0 < duration < 10.0, duration  # the browser decoded the spoken sentence

    await section.get_by_role("button", name="Save").click()
    await expect(page.locator(".q-notification", has_text="Voice saved.")).to_be_visible()
    await expect(section.get_by_text(f"Saved: {CHOSEN}, at 1.50× speed")).to_be_visible()
    await screenshots(page, "voice-settings", focus=section, reload=False)

    await page.reload()
    await expect(voice).to_have_value(CHOSEN)
    await expect(section.get_by_text("1.50×", exact=True)).to_be_visible()
    await expect(section.get_by_text(f"Saved: {CHOSEN}, at 1.50× speed")).to_be_visible()

    # On a phone nothing scrolls sideways and the buttons stay on the screen.
    await page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    await page.reload()
    await expect(voice).to_have_value(CHOSEN)
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    for button in [section.get_by_role("button", name="Preview"), section.get_by_role("button", name="Save")]:
        await button.scroll_into_view_if_needed()
        box = await button.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
