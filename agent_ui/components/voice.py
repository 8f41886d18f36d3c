"""Settings → Voice: the voice that reads answers aloud when none is named (chat's Read aloud, the API without
`voice`) and its speed, with a preview.

The voices are labelled by engine, language and gender, the engines that can speak now first; a voice of an engine
that cannot speak now stays choosable, marked "(offline)" (an online engine) or "(unavailable)" (a missing
program), since while it cannot speak the closest voice of an engine that can speaks instead (the preview says so).
"""

from __future__ import annotations

import base64

from nicegui import ui
from pydantic import ValidationError

from agent_ui.components.a11y import named
from services.auth import Principal
from services.container import Services
from services.errors import DomainError
from services.tts import TtsService
from services.tts.schemas import SynthesizeRequest, VoiceList, VoicePreferenceRead, VoicePreferenceUpdate, VoiceRead

DEFAULT = "default"  # the choice that stores no voice (voice ids always hold an engine prefix, "espeak:…")
PREVIEW_TEXT = "Hello! This is how your answers sound when they are read aloud."
MIN_RATE, MAX_RATE, RATE_STEP = 0.5, 2.0, 0.05


def voice_label(voice: VoiceRead, listing: VoiceList) -> str:
    """``espeak-ng · English (UK) · female 2``, ``Edge · English (US) · Aria, female (offline)``."""
    described, _, engine_name = voice.name.rpartition(" — ")
    language, _, who = (described or voice.name).partition(", ")
    if voice.gender not in who.split():
        who = f"{who}, {voice.gender}" if who else voice.gender
    label = f"{engine_name or voice.engine} · {language} · {who}"
    if not voice.available:
        online = next((engine.online for engine in listing.engines if engine.name == voice.engine), False)
        label += " (offline)" if online else " (unavailable)"
    return label


def voice_options(listing: VoiceList) -> dict[str, str]:
    """The default choice, then each voice: engines that can speak now first (in order of preference), each
    engine's voices by language."""
    labels = {voice.id: voice_label(voice, listing) for voice in listing.voices}
    default = labels.get(listing.default_voice or "", "no engine can speak now")
    engines = [engine.name for engine in sorted(listing.engines, key=lambda engine: not engine.available)]
    ordered = sorted(listing.voices, key=lambda voice: (engines.index(voice.engine), labels[voice.id].split(" · ")[1]))
    return {DEFAULT: f"Default — {default}", **{voice.id: labels[voice.id] for voice in ordered}}


class VoiceSection:
    """The card: a voice, a speed, Preview (plays the sentence in a player under the buttons) and Save."""

    def __init__(self, tts: TtsService, principal: Principal) -> None:
        self._tts = tts
        self._principal = principal
        self._listing = VoiceList(default_voice=None, engines=[], voices=[])
        self._options: dict[str, str] = {}

    async def build(self) -> None:
        self._listing = await self._tts.voices()
        self._options = voice_options(self._listing)
        saved = await self._tts.preferences(self._principal)
        chosen = saved.voice if saved.voice in self._options else DEFAULT
        with ui.card().classes("w-full gap-3 min-w-0 scroll-mt-20").props("id=voice").mark("voice-settings"):
            ui.label("Voice").classes("text-lg font-medium")
            ui.label("Reads answers aloud in chat, and speaks for the API when a request names no voice.").classes(
                "text-sm text-grey-7"
            )
            self._voice = (
                ui.select(self._options, value=chosen, label="Voice", with_input=True)
                .props("outlined dense options-dense behavior=menu")
                .classes("w-full sm:w-[32rem] max-w-full")
                .mark("voice-select")
            )
            with ui.row().classes("w-full sm:w-[32rem] max-w-full items-center no-wrap gap-3"):
                ui.label("Speed").classes("text-sm shrink-0")
                self._rate = named(ui.slider(min=MIN_RATE, max=MAX_RATE, step=RATE_STEP, value=saved.rate), "Speed")
                self._rate.classes("grow min-w-0").mark("voice-rate")
                rate_text = ui.label().classes("text-sm font-mono w-12 text-right shrink-0").mark("voice-rate-value")
                rate_text.bind_text_from(self._rate, "value", backward=lambda value: f"{float(value or 1):.2f}×")
            self._effective = ui.label().classes("text-sm text-grey-7").mark("voice-effective")
            self._show_effective(saved)
            with ui.row().classes("items-center gap-2"):
                self._preview_button = ui.button("Preview", icon="play_arrow", on_click=self._preview)
                self._preview_button.props("outline").mark("voice-preview")
                self._save_button = ui.button("Save", icon="check", on_click=self._save).mark("voice-save")
            self._player = ui.element("div").classes("w-full sm:w-[32rem] max-w-full").mark("voice-player")

    def _chosen(self) -> str | None:
        value = self._voice.value
        return None if value in (None, DEFAULT) else str(value)

    def _speed(self) -> float:
        return round(float(self._rate.value or 1.0), 2)

    def _label(self, voice_id: str | None) -> str:
        return self._options.get(voice_id or DEFAULT, voice_id or "no voice")

    def _show_effective(self, saved: VoicePreferenceRead) -> None:
        if saved.effective_voice is None:
            who = "no engine can speak now"
        elif saved.voice != saved.effective_voice:  # none chosen, or one no engine has any more
            who = f"the default voice, {self._label(saved.effective_voice)}"
        else:
            who = self._label(saved.effective_voice)
        self._effective.set_text(f"Saved: {who}, at {saved.rate:.2f}× speed")

    async def _preview(self) -> None:
        if not self._preview_button.enabled:  # clicked again while the last one is spoken
            return
        # The default choice previews the default voice by name (without one, the saved voice would speak).
        voice = self._chosen() or self._listing.default_voice
        self._preview_button.disable()
        try:
            speech = await self._tts.synthesize(
                self._principal, SynthesizeRequest(text=PREVIEW_TEXT, voice=voice, rate=self._speed())
            )
        except DomainError as exc:
            ui.notify(exc.message, type="negative", multi_line=True)
            return
        finally:
            self._preview_button.enable()
        self._player.clear()
        with self._player:
            source = "data:audio/mpeg;base64," + base64.b64encode(speech.data).decode()
            ui.audio(source, autoplay=True).classes("w-full").mark("voice-preview-audio")
        if voice is not None and speech.voice != voice:
            ui.notify(f"{self._label(voice)} cannot speak now: you heard {self._label(speech.voice)}.", type="info")

    async def _save(self) -> None:
        if not self._save_button.enabled:
            return
        self._save_button.disable()
        try:
            saved = await self._tts.set_preferences(
                self._principal, VoicePreferenceUpdate(voice=self._chosen(), rate=self._speed())
            )
        except DomainError as exc:
            ui.notify(exc.message, type="negative", multi_line=True)
            return
        except ValidationError:
            ui.notify("Choose a voice from the list.", type="warning")
            return
        finally:
            self._save_button.enable()
        self._show_effective(saved)
        ui.notify("Voice saved.", type="positive")


def disabled_notice() -> None:
    with ui.card().classes("w-full").mark("voice-off"):
        ui.label("Voice").classes("text-lg font-medium")
        ui.label("Text to speech is disabled on this instance.").classes("text-grey-7")


async def voice_section(services: Services, principal: Principal) -> None:
    """The section, or a notice when this instance runs without text to speech."""
    tts = services.find(TtsService)
    if tts is None:
        disabled_notice()
        return
    await VoiceSection(tts, principal).build()
