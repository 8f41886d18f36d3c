"""A podcast in a real browser, with no network: a text document uploaded on Resources grounds a podcast for two
speakers with voices of the user's choice (the scripted model writes it, espeak-ng speaks it); the progress bar,
then the player: a click on line 3 plays from its start and highlights it, and line 3 edited is heard anew in the
new MP3 (pocketsphinx). Screenshots: docs/screenshots/generate-hub-*, podcast-form-desktop,
podcast-progress-desktop, podcast-done-{desktop,phone}."""

from __future__ import annotations

import dataclasses
import re

import pytest
from playwright.async_api import FilePayload, Page, expect

from services.tts import audio
from tests.agent_ui.api.v1.test_podcasts import CHAPTERS, EDITED, PASTED, SPOKEN, clip, script_steps
from tests.e2e.browser import DESKTOP, PHONE, SCREENSHOTS, register, screenshots, settled
from tests.e2e.test_accessible_names import nameless_buttons
from tests.services.tts.listen import heard
from tests.upstream import ScriptedUpstream

pytestmark = pytest.mark.e2e
ALEX_VOICE = "espeak-ng · English (US) · male"  # line 3 is Alex's
SAM_VOICE = "espeak-ng · English (US) · female 2"
WAIT_FOR_METADATA = (
    "a => a.readyState >= 1 || new Promise(done => a.addEventListener('loadedmetadata', done, {once: true}))"
)


async def choose(page: Page, field: str, nth: int, option: str) -> None:
    """Pick ``option`` in the ``nth`` select labelled ``field`` (typing narrows the list)."""
    select = page.get_by_role("combobox", name=field, exact=True).nth(nth)
    await select.click()
    await select.fill(option.split(" · ", 1)[1])
    await page.get_by_role("option", name=option, exact=True).click()
    await page.keyboard.press("Escape")


async def test_a_grounded_podcast_is_made_played_from_a_line_and_one_line_is_heard_anew(
    live_url: str, page: Page, upstream: ScriptedUpstream
) -> None:
    await page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]
    await register(page, live_url, "podcaster@example.com")

    # a text document, uploaded and indexed
    await page.get_by_role("link", name="Resources").click()
    await expect(page).to_have_title("Resources · agent-ui")
    notes = FilePayload(name="harbour-notes.txt", mimeType="text/plain", buffer=PASTED.encode())
    await page.locator("input[type=file]").set_input_files(files=[notes])
    document = page.locator(".resources-row", has=page.get_by_text("harbour-notes", exact=True))
    await expect(document.get_by_text("ready", exact=True)).to_be_visible(timeout=60_000)

    # Generate → Podcast
    await page.get_by_role("link", name="Generate").click()
    await expect(page).to_have_title("Generate · agent-ui")
    for generator in ("Slides", "Prose"):  # every generator is a link now; none is still to come
        await expect(page.get_by_role("link", name=re.compile(f"^{generator}"))).to_be_visible()
    await expect(page.get_by_text("Coming soon")).to_have_count(0)
    await screenshots(page, "generate-hub")
    assert await nameless_buttons(page) == []
    await page.get_by_role("link", name=re.compile("^Podcast")).click()
    await expect(page).to_have_title("Podcast · agent-ui")
    await expect(page.get_by_role("link", name="Generate")).to_have_attribute("aria-current", "true")

    await page.locator(".podcast-form").get_by_role("button", name="Resources", exact=True).click()
    resources = page.get_by_label("Your resources", exact=True)
    await resources.click()
    await page.get_by_role("option", name="harbour-notes").click()
    await page.keyboard.press("Escape")
    await page.get_by_label("Focus on (optional)").fill("the lamp and its keepers")
    await choose(page, "Voice", 0, ALEX_VOICE)
    await choose(page, "Voice", 1, SAM_VOICE)
    await settled(page, reload=False)
    await page.screenshot(path=str(SCREENSHOTS / "podcast-form-desktop.png"))

    steps = script_steps(grounded=True)
    steps[1] = dataclasses.replace(steps[1], stall_s=3.0)  # the first chapter takes a moment: the progress shows
    upstream.push(*steps)
    await page.get_by_role("button", name="Generate").click()
    progress = page.get_by_role("progressbar", name="Progress of the podcast")
    await expect(progress).to_be_visible()
    await expect(page.get_by_text(re.compile(r"^Writing the script"))).to_be_visible()
    await expect(page).to_have_url(re.compile(r"/generate/podcast\?job=run_\w+$"))
    await settled(page, reload=False)
    await page.screenshot(path=str(SCREENSHOTS / "podcast-progress-desktop.png"))

    player = page.locator(".podcast-view audio")
    await expect(player).to_have_count(1, timeout=120_000)
    await expect(progress).to_be_hidden()
    lines = page.locator(".podcast-line")
    await expect(lines).to_have_count(len(SPOKEN))
    await expect(lines.nth(1).get_by_role("button", name="[1] harbour-notes")).to_be_visible()  # cited
    job_id = page.url.rsplit("=", 1)[1]
    made = await page.request.get(f"{live_url}/api/v1/agent/generation/podcasts/{job_id}")
    voices = {speaker["name"]: speaker["voice"] for speaker in (await made.json())["speakers"]}
    assert voices == {"Alex": "espeak:en-us", "Sam": "espeak:en-us+f2"}

    # a click on line 3 plays from its start, and that line is highlighted while it plays
    await player.evaluate(WAIT_FOR_METADATA)
    third = lines.nth(2)
    start = float(await third.get_attribute("data-start") or "nan")
    await third.locator(".podcast-line-text").click()
    position = await player.evaluate("a => a.currentTime")
    assert abs(position - start) <= 0.3, (position, start)
    await expect(third).to_have_class(re.compile(r"\bpodcast-line--playing\b"))
    await page.wait_for_function(f"a => !a.paused && a.currentTime > {start + 0.2}", arg=await player.element_handle())
    await expect(lines.nth(0)).not_to_have_class(re.compile(r"\bpodcast-line--playing\b"))
    await player.evaluate("a => a.pause()")

    # line 3 edited and spoken again: the new MP3 says the new text where line 3 now is
    source = await player.get_attribute("src")
    assert source is not None and source.endswith("?v=1")
    await third.get_by_role("button", name="Edit line 3").click()
    await third.get_by_label("New text").fill(EDITED)
    await third.get_by_role("button", name="Re-synthesise").click()
    await expect(third.locator(".podcast-line-text")).to_have_text(EDITED, timeout=60_000)
    await expect(page.locator(".q-notification", has_text="Line 3 is spoken again")).to_be_visible()
    await expect(player).to_have_attribute("src", source.replace("?v=1", "?v=2"))
    new_start = float(await third.get_attribute("data-start") or "nan")
    new_end = float(await third.get_attribute("data-end") or "nan")
    assert new_start == start and new_end - new_start > 1.0
    mp3 = await page.request.get(live_url + source.replace("?v=1", "?v=2"))
    assert mp3.ok and mp3.headers["content-type"] == "audio/mpeg"
    samples, rate = audio.decode(await mp3.body())
    spoken = [text for chapter in CHAPTERS for _, text, _ in chapter]
    assert heard(clip(samples, rate, new_start, new_end), [*spoken, EDITED]) == EDITED

    # on a phone, far down the transcript, the player is still in view, under the header
    await page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    await settled(page)  # opened on the phone (the drawer of the desktop would cover it)
    await lines.last.scroll_into_view_if_needed()
    await expect(lines.nth(0)).not_to_be_in_viewport()
    header, shown = await page.locator(".q-header").bounding_box(), await player.bounding_box()
    assert header is not None and shown is not None and shown["y"] >= header["y"] + header["height"], (header, shown)

    assert await nameless_buttons(page) == []
    await page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]
    await screenshots(page, "podcast-done")
