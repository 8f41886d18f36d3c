"""Text to speech behind one voice model: the engines in the order of preference, the default voice taken from the
first that can speak now (edge-tts when the network answers, else an offline engine), characters charged through
credits, and a clear 503 naming the package when no engine can speak."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal

from services.auth.authz import require_scope
from services.auth.schemas import Principal
from services.auth.scopes import Scope
from services.credits import CreditService
from services.errors import PayloadTooLargeError, ValidationFailedError
from services.ids import new_id
from services.money import to_micro
from services.settings import CreditsSettings, TtsSettings
from services.tts.audio import to_mp3
from services.tts.engines import Synthesized, TtsEngine, TtsUnavailableError, Voice
from services.tts.schemas import EngineRead, SynthesizeRequest, VoiceList, VoiceRead


@dataclass(frozen=True)
class Speech:
    """Audio ready to send: its bytes, media type, which voice and engine spoke, and how long it is."""

    data: bytes
    media_type: str
    voice: str
    engine: str
    duration_s: float


class TtsService:
    def __init__(
        self, *, engines: list[TtsEngine], credits: CreditService, settings: TtsSettings, prices: CreditsSettings
    ) -> None:
        self._engines = engines
        self._credits = credits
        self._settings = settings
        self._price_per_1k = Decimal(str(prices.tts_price_per_1k_chars))

    async def voices(self) -> VoiceList:
        reasons = {engine.name: await engine.available() for engine in self._engines}
        voices = [voice for engine in self._engines for voice in engine.voices()]
        speaking = [voice for voice in voices if reasons[voice.engine] is None]  # engines in order of preference
        return VoiceList(
            default_voice=speaking[0].id if speaking else None,
            engines=[
                EngineRead(
                    name=e.name,
                    online=e.online,
                    available=reasons[e.name] is None,
                    reason=reasons[e.name],
                    voices=len(e.voices()),
                )
                for e in self._engines
            ],
            voices=[
                VoiceRead(
                    id=v.id,
                    engine=v.engine,
                    language=v.language,
                    gender=v.gender,
                    name=v.name,
                    available=reasons[v.engine] is None,
                )
                for v in voices
            ],
        )

    async def describe(self) -> str:
        usable = [engine.name for engine in self._engines if await engine.available() is None]
        return "engines: " + (", ".join(usable) if usable else "none available")

    async def synthesize(self, principal: Principal, request: SynthesizeRequest) -> Speech:
        """Speak ``request.text``; an explicit voice whose engine cannot speak now falls back to the default voice
        of the same language on an engine that can (the answer names the engine that spoke)."""
        require_scope(principal, Scope.TTS)
        text = request.text.strip()
        if not text:
            raise ValidationFailedError("text is empty", code="empty_text")
        if len(text) > self._settings.max_chars:
            raise PayloadTooLargeError(f"text is longer than {self._settings.max_chars} characters")
        wanted = self._voice(request.voice) if request.voice else None
        cost = to_micro(self._price_per_1k * len(text) / 1000)
        hold = await self._credits.hold(principal.user.id, at_most=cost, cause_type="tts", cause_id=new_id("tts"))
        try:
            voice, spoken = await self._speak(text, wanted, request)
            data = spoken.wav if request.format == "wav" else await to_mp3_async(spoken.wav)
        except BaseException:
            await self._credits.release(hold)
            raise
        await self._credits.settle(hold, cost)
        return Speech(
            data=data,
            media_type="audio/wav" if request.format == "wav" else "audio/mpeg",
            voice=voice.id,
            engine=spoken.engine,
            duration_s=spoken.duration_s,
        )

    async def _speak(self, text: str, wanted: Voice | None, request: SynthesizeRequest) -> tuple[Voice, Synthesized]:
        """The first candidate that speaks: an engine that said it could may still fail (the network went away
        between), and the next one then speaks instead."""
        reasons: list[str] = []
        for engine, voice in await self._speakers(wanted, reasons):
            try:
                return voice, await engine.synthesize(text, voice, rate=request.rate, pitch=request.pitch)
            except TtsUnavailableError as exc:
                reasons.append(f"{engine.name}: {exc.message}")
        raise TtsUnavailableError(
            "no text-to-speech engine can speak now (" + "; ".join(reasons) + ")", code="tts_unavailable"
        )

    def _voice(self, voice_id: str) -> Voice:
        for engine in self._engines:
            for voice in engine.voices():
                if voice.id == voice_id:
                    return voice
        raise ValidationFailedError(f"unknown voice {voice_id!r}: see GET /tts/voices", code="unknown_voice")

    async def _speakers(self, wanted: Voice | None, reasons: list[str]) -> list[tuple[TtsEngine, Voice]]:
        """Who may speak, best first: ``wanted``'s engine when it can speak now, then every other engine that can,
        with its voice closest to ``wanted`` (same language and gender, then language; else its first voice).
        Why the others cannot goes to ``reasons``."""
        usable = []
        for engine in self._engines:
            reason = await engine.available()
            if reason is None:
                usable.append(engine)
            else:
                reasons.append(f"{engine.name}: {reason}")
        if wanted is None:
            return [(engine, engine.voices()[0]) for engine in usable if engine.voices()]
        own = [(engine, wanted) for engine in usable if engine.name == wanted.engine]
        return own + [(engine, closest(engine.voices(), wanted)) for engine in usable
                      if engine.name != wanted.engine and engine.voices()]  # fmt: skip


def closest(voices: list[Voice], wanted: Voice) -> Voice:
    for match in (
        lambda v: v.language == wanted.language and v.gender == wanted.gender,
        lambda v: v.language.split("-")[0] == wanted.language.split("-")[0],
    ):
        found = [voice for voice in voices if match(voice)]
        if found:
            return found[0]
    return voices[0]


async def to_mp3_async(wav: bytes) -> bytes:
    return await asyncio.to_thread(to_mp3, wav)
