"""Text to speech behind one voice model: the engines in the order of preference, the default voice taken from the
first that can speak now (edge-tts when the network answers, else an offline engine), characters charged through
credits, and a clear 503 naming the package when no engine can speak."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlencode

from services.auth.authz import require_scope
from services.auth.schemas import Principal
from services.auth.scopes import Scope
from services.clock import Clock, utcnow
from services.credits import CreditService
from services.db.database import Database
from services.errors import PayloadTooLargeError, ValidationFailedError
from services.ids import new_id
from services.money import to_micro
from services.settings import CreditsSettings, TtsSettings
from services.tts.audio import to_mp3
from services.tts.engines import Synthesized, TtsEngine, TtsUnavailableError, Voice
from services.tts.models import VoicePreference
from services.tts.schemas import (
    EngineRead,
    SynthesizeRequest,
    VoiceList,
    VoicePreferenceRead,
    VoicePreferenceUpdate,
    VoiceRead,
)

SAMPLE_TEXT = "Hello, this is how I sound. {name}."


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
        self,
        *,
        engines: list[TtsEngine],
        credits: CreditService,
        settings: TtsSettings,
        prices: CreditsSettings,
        db: Database,
        clock: Clock = utcnow,
    ) -> None:
        self._engines = engines
        self._samples: dict[str, Speech] = {}  # one per voice at most: the engines' voices are a fixed list
        self._db = db
        self._clock = clock
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
                    sample=f"/api/v1/agent/tts/sample?{urlencode({'voice': v.id})}",
                )
                for v in voices
            ],
        )

    async def describe(self) -> str:
        usable = [engine.name for engine in self._engines if await engine.available() is None]
        return "engines: " + (", ".join(usable) if usable else "none available")

    async def sample(self, principal: Principal, voice_id: str) -> Speech:
        """A few seconds of one voice introducing itself, in its own engine only (no stand-in: the point is to hear
        this voice); made once per voice and process, and free (the text is ours)."""
        require_scope(principal, Scope.TTS)
        voice = self._voice(voice_id)
        cached = self._samples.get(voice.id)
        if cached is None:
            engine = next(engine for engine in self._engines if engine.name == voice.engine)
            if (reason := await engine.available()) is not None:
                raise TtsUnavailableError(f"{voice.engine} cannot speak now: {reason}", code="tts_unavailable")
            spoken = await engine.synthesize(SAMPLE_TEXT.format(name=voice.name.split(" — ")[0]), voice)
            cached = Speech(data=await to_mp3_async(spoken.wav), media_type="audio/mpeg", voice=voice.id,
                            engine=spoken.engine, duration_s=spoken.duration_s)  # fmt: skip
            self._samples[voice.id] = cached
        return cached

    async def synthesize(self, principal: Principal, request: SynthesizeRequest) -> Speech:
        """Speak ``request.text``; an explicit voice whose engine cannot speak now falls back to the default voice
        of the same language on an engine that can (the answer names the engine that spoke). Without a voice, the
        user's preferred voice and (unless the request sets one) their rate; else the default voice."""
        require_scope(principal, Scope.TTS)
        text = request.text.strip()
        if not text:
            raise ValidationFailedError("text is empty", code="empty_text")
        if len(text) > self._settings.max_chars:
            raise PayloadTooLargeError(f"text is longer than {self._settings.max_chars} characters")
        if request.voice:
            wanted: Voice | None = self._voice(request.voice)
        else:
            wanted, request = await self._preferred(principal.user.id, request)
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

    def price_micro(self, chars: int) -> int:
        """What speaking ``chars`` characters costs (charged by whoever asks for the speech)."""
        return to_micro(self._price_per_1k * chars / 1000)

    def voice(self, voice_id: str) -> Voice:
        """A voice by its id (422 ``unknown_voice`` for one no engine has)."""
        return self._voice(voice_id)

    async def speak(
        self, text: str, voice: Voice | None, *, rate: float = 1.0, pitch: float = 0.0
    ) -> tuple[Voice, Synthesized]:
        """Speak with ``voice`` (or the next engine's closest voice when its engine cannot speak now), unbilled:
        the caller charges (a podcast charges its whole script at once)."""
        return await self._speak(text, voice, SynthesizeRequest(text=text, rate=rate, pitch=pitch))

    async def cast(self, count: int, language: str | None = None, engine: str | None = None) -> list[Voice]:
        """``count`` voices that can speak now and sound different: of the preferred engine that speaks (or
        ``engine``), in ``language``, alternating female and male."""
        reasons: dict[str, str | None] = {e.name: await e.available() for e in self._engines}
        usable = [e for e in self._engines if reasons[e.name] is None and (engine is None or e.name == engine)]
        if not usable:
            why = "; ".join(f"{name}: {reason}" for name, reason in reasons.items() if reason and name in
                            ([engine] if engine else reasons))  # fmt: skip
            lead = f"engine {engine!r} cannot speak now" if engine else "no text-to-speech engine can speak now"
            raise TtsUnavailableError(f"{lead} ({why or 'not configured'})", code="tts_unavailable")

        def speaks(voice: Voice) -> bool:
            return language is None or same_language(voice.language, language)

        voices = next(([v for v in e.voices() if speaks(v)] for e in usable if any(map(speaks, e.voices()))), [])
        if not voices:
            raise ValidationFailedError(f"no engine that speaks now has a voice for language {language!r}",
                                        code="unknown_language")  # fmt: skip
        by_gender = [[v for v in voices if v.gender == "female"], [v for v in voices if v.gender != "female"]]
        picked: list[Voice] = []
        for index in range(count):
            pool = by_gender[index % 2] or by_gender[(index + 1) % 2]
            unused = [v for v in pool if v not in picked]
            picked.append(unused[0] if unused else pool[index % len(pool)])
        return picked

    async def preferences(self, principal: Principal) -> VoicePreferenceRead:
        """The user's voice (None when they chose none), their rate, and the voice that speaks when they name none:
        theirs while an engine still has it, else the default voice (None when no engine can speak now)."""
        require_scope(principal, Scope.TTS)
        async with self._db.transaction(readonly=True) as session:
            row = await session.get(VoicePreference, principal.user.id)
        return await self._preference_read(row)

    async def set_preferences(self, principal: Principal, update: VoicePreferenceUpdate) -> VoicePreferenceRead:
        """Replace the user's voice and rate (``voice`` None clears the voice); 422 ``unknown_voice`` for a voice
        no engine has. A voice whose engine cannot speak now is kept (the closest voice of an engine that can
        speaks meanwhile)."""
        require_scope(principal, Scope.TTS)
        if update.voice is not None:
            self.voice(update.voice)
        now = self._clock()
        async with self._db.transaction(exclusive=f"tts-preferences:{principal.user.id}") as session:
            row = await session.get(VoicePreference, principal.user.id)
            if row is None:
                row = VoicePreference(user_id=principal.user.id, updated_at=now)
            row.voice, row.rate, row.updated_at = update.voice, update.rate, now
            session.add(row)
        return await self._preference_read(row)

    async def _preference_read(self, row: VoicePreference | None) -> VoicePreferenceRead:
        voice = row.voice if row is not None else None
        effective = voice if voice is not None and self._known(voice) else (await self.voices()).default_voice
        return VoicePreferenceRead(voice=voice, rate=row.rate if row is not None else 1.0, effective_voice=effective)

    async def _preferred(self, user_id: str, request: SynthesizeRequest) -> tuple[Voice | None, SynthesizeRequest]:
        """The user's voice (None: the default voice, also for one no engine has any more) and ``request`` with
        their rate unless it set one: one read."""
        async with self._db.transaction(readonly=True) as session:
            row = await session.get(VoicePreference, user_id)
        if row is None:
            return None, request
        if "rate" not in request.model_fields_set:
            request = request.model_copy(update={"rate": row.rate})
        return (self._known(row.voice) if row.voice is not None else None), request

    def _known(self, voice_id: str) -> Voice | None:
        return next((voice for engine in self._engines for voice in engine.voices() if voice.id == voice_id), None)

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
        others = [(engine, closest(engine.voices(), wanted)) for engine in usable
                  if engine.name != wanted.engine and engine.voices()]  # fmt: skip
        # Engines with a voice of the language first (flite has English only: a German line goes to espeak-ng).
        others.sort(key=lambda pair: not same_language(pair[1].language, wanted.language))
        return own + others


def same_language(one: str, other: str) -> bool:
    """``en-US`` and ``en-gb`` are one language (the engines spell their tags differently)."""
    return one.split("-")[0].lower() == other.split("-")[0].lower()


def closest(voices: list[Voice], wanted: Voice) -> Voice:
    for match in (
        lambda v: v.language == wanted.language and v.gender == wanted.gender,
        lambda v: same_language(v.language, wanted.language),
    ):
        found = [voice for voice in voices if match(voice)]
        if found:
            return found[0]
    return voices[0]


async def to_mp3_async(wav: bytes) -> bytes:
    return await asyncio.to_thread(to_mp3, wav)
