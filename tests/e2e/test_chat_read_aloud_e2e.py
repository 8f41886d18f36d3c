"""In the browser: an answer's "Read aloud" button puts a player under it that holds the spoken answer (flite,
offline). Screenshots: docs/screenshots/chat-read-aloud-{desktop,phone}.png."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.e2e.browser import DESKTOP, PHONE, register, settled
from tests.e2e.test_chat_journey import answered, ask
from tests.upstream import ScriptedUpstream, Step, words

pytestmark = pytest.mark.e2e


async def test_read_an_answer_aloud(live_url: str, page: Page, upstream: ScriptedUpstream) -> None:
    await register(page, live_url, "listener@example.com")
    upstream.push(Step(text=words("Octopuses have three hearts and blue blood.")))
    await ask(page, "Tell me an octopus fact")
    await answered(page, "Octopuses have three hearts and blue blood.")
    await page.get_by_role("button", name="Read aloud").click()
    player = page.locator("audio")
    await expect(player).to_have_count(1, timeout=15_000)
    duration = await player.evaluate(
        "audio => new Promise(done => audio.readyState >= 1 ? done(audio.duration)"
        " : audio.addEventListener('loadedmetadata', () => done(audio.duration)))"
    )
    assert 1.0 < duration < 10.0, duration  # the browser decoded the spoken answer
    for name, size in (("desktop", DESKTOP), ("phone", PHONE)):
        await page.set_viewport_size(size)  # type: ignore[arg-type]
        await settled(page, reload=False)  # the page's transitions for the new size are over
        await page.screenshot(path=f"docs/screenshots/chat-read-aloud-{name}.png")
