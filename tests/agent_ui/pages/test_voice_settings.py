"""Settings → Voice through the NiceGUI `user` fixture (offline: flite speaks the default voice, espeak-ng the chosen
one): the voices labelled by engine, language and gender (an unreachable engine's marked), Preview plays the chosen
voice at the chosen speed, Save stores it and a reload shows it, chat's Read aloud then speaks with it; the default
choice clears it; errors are notifications; a notice when TTS is off."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from nicegui import ui
from nicegui.testing import User

from agent_ui.components.voice import DEFAULT, PREVIEW_TEXT, voice_label
from services.tts import TtsService
from services.tts.schemas import SynthesizeRequest, VoiceList, VoicePreferenceUpdate
from tests.agent_ui.api.v1.test_tts import path_without
from tests.agent_ui.pages.test_auth_pages import register_in_ui
from tests.agent_ui.pages.test_chat_page import SQLITE_ONLY, answered, app_services, ask, eventually, marked, me
from tests.upstream import ScriptedUpstream, Step, words

EMAIL = "chat@example.com"  # test_chat_page's `me` signs this one in
CHOSEN = "espeak:en-gb+f2"
ANSWER = "seven green apples"


async def open_settings(user: User) -> None:
    await register_in_ui(user, EMAIL)
    await user.should_see(marker="empty-thread", retries=100)
    await user.open("/settings")
    await user.should_see(marker="voice-settings", retries=50)


def only(user: User, marker: str) -> ui.element:
    (element,) = marked(user, marker)
    return element


def picker(user: User) -> ui.select:
    select = only(user, "voice-select")
    assert isinstance(select, ui.select)
    return select


def rate_slider(user: User) -> ui.slider:
    slider = only(user, "voice-rate")
    assert isinstance(slider, ui.slider)
    return slider


def choose(user: User, label: str) -> None:
    user.find(marker="voice-select").click()  # opens the list
    user.find(label).click()


async def preview_audio(user: User) -> bytes:
    await eventually(lambda: len(marked(user, "voice-preview-audio")) == 1)
    source = str(only(user, "voice-preview-audio").props["src"])
    assert source.startswith("data:audio/mpeg;base64,"), source[:40]
    return base64.b64decode(source.split(",", 1)[1])


async def listing() -> VoiceList:
    return await app_services().get(TtsService).voices()


async def spoken(text: str, voice: str, rate: float) -> bytes:
    """The MP3 the service makes for ``voice`` at ``rate`` named explicitly (espeak-ng, flite and the encoder are
    deterministic: the same request gives the same bytes)."""
    request = SynthesizeRequest(text=text, voice=voice, rate=rate)
    return (await app_services().get(TtsService).synthesize(await me(EMAIL), request)).data


@SQLITE_ONLY  # the page's behaviour; the API's tests run both databases
async def test_choose_preview_save_and_read_aloud_with_a_voice(
    ui_env: str, user: User, upstream: ScriptedUpstream
) -> None:
    await open_settings(user)
    voices = await listing()
    assert voices.default_voice is not None and voices.default_voice != CHOSEN
    by_id = {voice.id: voice for voice in voices.voices}
    select = picker(user)
    assert select.value == DEFAULT and rate_slider(user).value == 1.0
    options = dict(select.options)
    assert options[DEFAULT] == f"Default — {voice_label(by_id[voices.default_voice], voices)}"
    assert options[CHOSEN] == "espeak-ng · English (UK) · female 2"
    assert options["edge:en-US-AriaNeural"] == "Edge · English (US) · Aria, female (offline)"  # no network here
    for voice in voices.voices:  # every voice is offered, those that cannot speak now marked
        assert options[voice.id].endswith(("(offline)", "(unavailable)")) is not voice.available, options[voice.id]
    first_voices = [by_id[key] for key in list(options)[1:4]]
    assert all(voice.available for voice in first_voices), first_voices  # engines that can speak come first

    choose(user, options[CHOSEN])
    assert select.value == CHOSEN
    rate_slider(user).set_value(1.5)
    await user.should_see("1.50×")
    user.find(marker="voice-preview").click()
    assert await preview_audio(user) == await spoken(PREVIEW_TEXT, CHOSEN, 1.5)
    tts = app_services().get(TtsService)
    assert (await tts.preferences(await me(EMAIL))).voice is None  # a preview stores nothing

    user.find(marker="voice-save").click()
    await user.should_see("Voice saved.")
    stored = await tts.preferences(await me(EMAIL))
    assert (stored.voice, stored.rate, stored.effective_voice) == (CHOSEN, 1.5, CHOSEN)
    await user.should_see(f"Saved: {options[CHOSEN]}, at 1.50× speed")

    await user.open("/settings")  # a reload shows what is stored
    await user.should_see(marker="voice-settings", retries=50)
    assert picker(user).value == CHOSEN and rate_slider(user).value == 1.5

    # Chat's Read aloud names no voice: it speaks with the saved one, at the saved speed.
    await user.open("/")
    await user.should_see(marker="empty-thread", retries=100)
    upstream.push(Step(text=words(ANSWER)))
    await ask(user, "Name some fruit")
    await answered(user, ANSWER)
    await user.should_see(marker="read-aloud")  # the finished answer's actions may come a moment after its text
    user.find(marker="read-aloud").click()
    await eventually(lambda: len(marked(user, "read-aloud-audio")) == 1)
    read = base64.b64decode(str(only(user, "read-aloud-audio").props["src"]).split(",", 1)[1])
    assert read == await spoken(ANSWER, CHOSEN, 1.5)
    assert read != await spoken(ANSWER, voices.default_voice, 1.0)


@SQLITE_ONLY
async def test_the_default_choice_clears_the_voice_and_an_offline_voice_previews_with_a_stand_in(
    ui_env: str, user: User
) -> None:
    await open_settings(user)
    tts = app_services().get(TtsService)
    await tts.set_preferences(await me(EMAIL), VoicePreferenceUpdate(voice=CHOSEN, rate=0.75))
    await user.open("/settings")
    await user.should_see(marker="voice-settings", retries=50)
    assert picker(user).value == CHOSEN and rate_slider(user).value == 0.75

    options = dict(picker(user).options)
    choose(user, options["edge:en-GB-RyanNeural"])
    user.find(marker="voice-preview").click()
    audio = await preview_audio(user)
    await user.should_see("Edge · English (UK) · Ryan, male (offline) cannot speak now: you heard flite · "
                          "English (Scotland) · Alan, male.")  # fmt: skip
    # the first offline engine of the order (flite), with its closest voice: language and gender
    assert audio == await spoken(PREVIEW_TEXT, "flite:awb", 0.75)

    choose(user, options[DEFAULT])
    before = only(user, "voice-preview-audio")
    user.find(marker="voice-preview").click()  # the default voice, not the saved one
    await eventually(lambda: marked(user, "voice-preview-audio") not in ([], [before]))  # a new player
    voices = await listing()
    assert voices.default_voice == "flite:slt"  # the first voice of the first engine of the order that speaks
    assert await preview_audio(user) == await spoken(PREVIEW_TEXT, voices.default_voice, 0.75)
    user.find(marker="voice-save").click()
    await user.should_see("Voice saved.")
    stored = await tts.preferences(await me(EMAIL))
    assert (stored.voice, stored.rate, stored.effective_voice) == (None, 0.75, voices.default_voice)


@pytest.fixture
def no_engine(ui_env: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """flite the only engine, and not installed (not on PATH when the app is built): nothing can speak."""
    monkeypatch.setenv("AGENT_UI_TTS__ENGINES", '["flite"]')
    monkeypatch.setenv("PATH", path_without("flite", tmp_path / "bin"))


@SQLITE_ONLY
async def test_when_nothing_can_speak_the_preview_says_why(no_engine: None, user: User) -> None:
    await open_settings(user)
    options = dict(picker(user).options)
    assert options[DEFAULT] == "Default — no engine can speak now"
    assert options["flite:slt"] == "flite · English (US) · Sarah, female (unavailable)"
    await user.should_see("Saved: no engine can speak now, at 1.00× speed")
    user.find(marker="voice-preview").click()
    await user.should_see("no text-to-speech engine can speak now (flite: flite is not installed", retries=50)
    assert marked(user, "voice-preview-audio") == []


@pytest.fixture
def tts_off(ui_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_UI_TTS__ENABLED", "false")


@SQLITE_ONLY
async def test_tts_turned_off_says_so(tts_off: None, user: User) -> None:
    await register_in_ui(user, EMAIL)
    await user.should_see(marker="empty-thread", retries=100)
    await user.open("/settings")
    await user.should_see(marker="voice-off", retries=50)
    await user.should_see("Text to speech is disabled on this instance.")
    assert marked(user, "voice-settings") == []
