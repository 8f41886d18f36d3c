"""Text-to-speech engines: espeak-ng and flite (local programs, offline) and edge-tts (Microsoft's online voices).

Every engine answers the same small contract (``TtsEngine``): whether it can run now and why not, the voices it
offers, and ``synthesize`` returning a complete PCM 16-bit mono WAV. An engine that cannot run raises
``TtsUnavailableError`` (503) naming what to install or what failed, so the service can fall back to another one.
Nothing here blocks the event loop: programs run as asyncio subprocesses, files and decoding go through threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import math
import re
import shutil
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from services.errors import UpstreamUnavailableError, ValidationFailedError
from services.tts import audio

Gender = Literal["female", "male", "neutral"]

RATE_RANGE = (0.5, 2.0)
PITCH_RANGE = (-12.0, 12.0)
_TEMP_PREFIX = "agent-ui-tts-"
_AVAILABLE_TTL_S = 30.0  # how long a successful availability check is trusted


@dataclass(frozen=True)
class Voice:
    """One voice of one engine; ``id`` ("espeak:en-us+f3") is unique across engines and what clients send back."""

    id: str
    engine: str
    language: str
    gender: Gender
    name: str

    @property
    def native(self) -> str:
        """The engine's own name for the voice (the id without its engine prefix)."""
        return self.id.split(":", 1)[1]


@dataclass(frozen=True)
class Synthesized:
    """A finished clip: a complete PCM 16-bit mono WAV and what the caller needs to place or bill it."""

    wav: bytes
    sample_rate: int
    duration_s: float
    engine: str


class TtsUnavailableError(UpstreamUnavailableError):
    """The engine cannot speak now (not installed, offline, timed out); the message says what to install or what
    failed."""


@runtime_checkable
class TtsEngine(Protocol):
    """A speech engine. ``name`` is the voice id prefix; ``online`` engines send the text to a third party."""

    name: str
    online: bool

    async def available(self) -> str | None:
        """None when the engine can be used now, else the reason it cannot (cheap: cached for a while)."""
        ...

    def voices(self) -> list[Voice]:
        """The voices this engine offers (a curated list; no I/O)."""
        ...

    async def synthesize(self, text: str, voice: Voice, *, rate: float = 1.0, pitch: float = 0.0) -> Synthesized:
        """Speak ``text``: ``rate`` is a speed multiplier (0.5-2.0), ``pitch`` a shift in semitones (-12..+12).

        Raises ``ValidationFailedError`` for blank text, a voice of another engine or values out of range, and
        ``TtsUnavailableError`` when the engine cannot run; never returns empty audio.
        """
        ...


def _check_request(engine: str, text: str, voice: Voice, rate: float, pitch: float) -> None:
    """The contract's argument checks, shared so every engine refuses the same things the same way."""
    if not text.strip():
        raise ValidationFailedError("There is no text to speak.")
    if voice.engine != engine or not voice.id.startswith(engine + ":"):
        raise ValidationFailedError(f"Voice {voice.id!r} does not belong to the {engine} engine.")
    if not (math.isfinite(rate) and RATE_RANGE[0] <= rate <= RATE_RANGE[1]):
        raise ValidationFailedError(f"rate must be between {RATE_RANGE[0]} and {RATE_RANGE[1]}, got {rate}.")
    if not (math.isfinite(pitch) and PITCH_RANGE[0] <= pitch <= PITCH_RANGE[1]):
        raise ValidationFailedError(f"pitch must be between {PITCH_RANGE[0]} and {PITCH_RANGE[1]} semitones.")


async def _finish(data: bytes, engine: str, what: str) -> Synthesized:
    """Turn an engine's file into our WAV, refusing empty or unreadable output instead of passing it on."""
    try:
        wav, rate, duration = await asyncio.to_thread(audio.as_wav, data)
    except Exception as exc:  # libsndfile raises its own error type for anything it cannot parse
        raise TtsUnavailableError(f"{what} produced unreadable audio: {exc}", details={"engine": engine}) from exc
    if duration <= 0:
        raise TtsUnavailableError(f"{what} produced no audio.", details={"engine": engine})
    return Synthesized(wav=wav, sample_rate=rate, duration_s=duration, engine=engine)


async def _run_program(argv: Sequence[str], stdin: bytes, timeout_s: float, what: str, engine: str) -> None:
    """Run a synthesis program (no shell) feeding ``stdin``; the process is killed on timeout or cancellation."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            # No input: no pipe, so nothing is written to a program that may already have exited.
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise TtsUnavailableError(f"{what} could not start: {exc}", details={"engine": engine}) from exc
    try:
        try:
            _, stderr = await asyncio.wait_for(process.communicate(stdin or None), timeout_s)
        except (BrokenPipeError, ConnectionResetError, RuntimeError):
            # It exited before reading all its input (uvloop says so with a RuntimeError about a closed
            # transport): its exit status says how it went.
            await asyncio.wait_for(process.wait(), timeout_s)
            stderr = b"(it stopped reading its input)"
    except TimeoutError as exc:
        raise TtsUnavailableError(f"{what} took longer than {timeout_s:g} s.", details={"engine": engine}) from exc
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    if process.returncode != 0:
        tail = stderr.decode(errors="replace").strip()[-300:]
        raise TtsUnavailableError(f"{what} failed (exit {process.returncode}): {tail}", details={"engine": engine})


class _LocalProgramEngine:
    """Shared shape of the engines that are a local program: found on PATH, checked once per TTL, run per clip."""

    name: str
    online = False
    program: str  # the executable's name, also the Debian package's
    probe_args: tuple[str, ...] = ("--version",)  # a quick command that exits 0 when the program works

    def __init__(self, binary: str | None = None, *, timeout_s: float = 120.0) -> None:
        self._binary = binary if binary is not None else shutil.which(self.program)
        self._timeout_s = timeout_s
        self._checked: tuple[float, str | None] | None = None  # (when, reason)

    def _install_hint(self) -> str:
        return f"{self.program} is not installed (apt-get install {self.program})"

    async def available(self) -> str | None:
        """Runs a quick command of the program once per TTL; the reason names the package to install."""
        now = time.monotonic()
        if self._checked is not None and now - self._checked[0] < _AVAILABLE_TTL_S:
            return self._checked[1]
        reason = await self._probe()
        self._checked = (now, reason)
        return reason

    async def _probe(self) -> str | None:
        if self._binary is None:
            return self._install_hint()
        try:
            await self._run([*self.probe_args], b"", 10.0)
        except TtsUnavailableError as exc:
            return exc.message
        except Exception as exc:  # a check never takes the app down: it says why the engine cannot be used
            return f"{self.program} could not be checked: {exc}"
        return None

    async def _run(self, args: list[str], stdin: bytes, timeout_s: float) -> None:
        """Run the program; a binary that vanished reads as "not installed" with the package to install."""
        try:
            await _run_program([str(self._binary), *args], stdin, timeout_s, self.program, self.name)
        except TtsUnavailableError as exc:
            if isinstance(exc.__cause__, FileNotFoundError):
                reason = f"{self._install_hint()}: {self._binary} does not exist"
                raise TtsUnavailableError(reason, details={"engine": self.name}) from exc
            raise

    async def _speak(self, options: list[str], text_via_stdin: bool, text: str) -> Synthesized:
        """Run the program in a private temp dir that is always removed; it writes ``speech.wav`` there."""
        if self._binary is None:
            raise TtsUnavailableError(self._install_hint(), details={"engine": self.name})
        workdir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=_TEMP_PREFIX))
        try:
            output = workdir / "speech.wav"
            encoded = text.encode("utf-8")
            if text_via_stdin:
                await self._run([*options, "-w", str(output), "--stdin"], encoded, self._timeout_s)
            else:
                source = workdir / "text.txt"
                await asyncio.to_thread(source.write_bytes, encoded)
                await self._run([*options, "-f", str(source), "-o", str(output)], b"", self._timeout_s)
            try:
                data = await asyncio.to_thread(output.read_bytes)
            except FileNotFoundError as exc:
                raise TtsUnavailableError(f"{self.program} wrote no audio.", details={"engine": self.name}) from exc
            return await _finish(data, self.name, self.program)
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)


def _espeak_voice(native: str, language: str, gender: Gender, label: str) -> Voice:
    return Voice(id=f"espeak:{native}", engine="espeak", language=language, gender=gender,
                 name=f"{label} — espeak-ng")  # fmt: skip


# (espeak voice, BCP-47 tag, display label). Each gets its male base voice and a female variant.
_ESPEAK_LANGUAGES: tuple[tuple[str, str, str], ...] = (
    ("en-us", "en-US", "English (US)"),
    ("en-gb", "en-GB", "English (UK)"),
    ("de", "de-DE", "German"),
    ("fr-fr", "fr-FR", "French"),
    ("es", "es-ES", "Spanish (Spain)"),
    ("es-419", "es-419", "Spanish (Latin America)"),
    ("it", "it-IT", "Italian"),
    ("pt-br", "pt-BR", "Portuguese (Brazil)"),
    ("pt", "pt-PT", "Portuguese (Portugal)"),
    ("nl", "nl-NL", "Dutch"),
    ("pl", "pl-PL", "Polish"),
    ("sv", "sv-SE", "Swedish"),
    ("tr", "tr-TR", "Turkish"),
    ("ru", "ru-RU", "Russian"),
    ("hi", "hi-IN", "Hindi"),
    ("cmn", "zh-CN", "Chinese (Mandarin)"),
    ("ja", "ja-JP", "Japanese"),
    ("ko", "ko-KR", "Korean"),
    ("ar", "ar", "Arabic"),
)


def _espeak_catalogue() -> list[Voice]:
    voices: list[Voice] = []
    # The female variant first: it is the default voice, and bench.tts measured it the more intelligible
    # (pocketsphinx heard 95% of its sentences exactly, 60% of the male base voice's).
    for native, language, label in _ESPEAK_LANGUAGES:
        voices.append(_espeak_voice(f"{native}+f3", language, "female", f"{label}, female 3"))
        voices.append(_espeak_voice(native, language, "male", f"{label}, male"))
    # English gets a second voice of each kind, the language most podcasts are made in.
    for native, language, label in _ESPEAK_LANGUAGES[:2]:
        voices.append(_espeak_voice(f"{native}+m3", language, "male", f"{label}, male 3"))
        voices.append(_espeak_voice(f"{native}+f2", language, "female", f"{label}, female 2"))
    return voices


# espeak-ng's -p (0-99, default 50) against the shift it gives in semitones, measured on en-us and en-us+f3
# (median F0 of a sentence): the scale is not linear and reaches about -6..+8.5 semitones; beyond is clamped.
_ESPEAK_PITCH_POINTS = (0.0, 25.0, 40.0, 50.0, 60.0, 75.0, 90.0, 99.0)
_ESPEAK_PITCH_SEMITONES = (-6.0, -3.0, -1.4, 0.0, 1.6, 4.1, 6.85, 8.45)
_ESPEAK_WPM = 175  # espeak-ng's default speed; rate multiplies it (80-450 is its range)
_ESPEAK_VOICE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*(\+[a-z0-9_-]+)?$")


class EspeakEngine(_LocalProgramEngine):
    """espeak-ng (Debian ``espeak-ng``): offline, ~200x faster than real time, many languages, robotic.

    Text goes in on stdin (``--stdin``), never on the command line, so text that looks like an option is spoken.
    """

    name = "espeak"
    program = "espeak-ng"

    def voices(self) -> list[Voice]:
        return _espeak_catalogue()

    @staticmethod
    def speed_wpm(rate: float) -> int:
        """espeak-ng -s (words per minute) for a speed multiplier."""
        return round(_ESPEAK_WPM * rate)

    @staticmethod
    def pitch_value(semitones: float) -> int:
        """espeak-ng -p (0-99) for a shift in semitones, from the measured curve."""
        return round(float(np.interp(semitones, _ESPEAK_PITCH_SEMITONES, _ESPEAK_PITCH_POINTS)))

    async def synthesize(self, text: str, voice: Voice, *, rate: float = 1.0, pitch: float = 0.0) -> Synthesized:
        _check_request(self.name, text, voice, rate, pitch)
        if not _ESPEAK_VOICE_NAME.match(voice.native):
            raise ValidationFailedError(f"{voice.native!r} is not an espeak-ng voice name.")
        options = ["-v", voice.native, "-s", str(self.speed_wpm(rate)), "-p", str(self.pitch_value(pitch)), "-b", "1"]
        return await self._speak(options, True, text)


# flite's built-in voices (Debian ``flite``): clustergen voices at 16 kHz; rms ignores pitch changes.
_FLITE_VOICES = (
    Voice(id="flite:slt", engine="flite", language="en-US", gender="female", name="English (US), Sarah — flite"),
    Voice(id="flite:rms", engine="flite", language="en-US", gender="male", name="English (US), Richard — flite"),
    Voice(id="flite:awb", engine="flite", language="en-GB", gender="male", name="English (Scotland), Alan — flite"),
    Voice(id="flite:kal16", engine="flite", language="en-US", gender="male", name="English (US), Kal — flite"),
)


# Voices whose pitch flite 2.2 (Debian) leaves as it is whatever f0_shift says: shifted by playing them faster.
_FLITE_FIXED_PITCH = frozenset({"rms"})


class FliteEngine(_LocalProgramEngine):
    """flite (Debian ``flite``): offline, English only, clearer than espeak-ng.

    Text goes in through a file (``-f``), never the command line. Speed is ``duration_stretch`` (1/rate) and pitch
    ``f0_shift`` (a frequency factor, 2^(semitones/12)).
    """

    name = "flite"
    program = "flite"
    probe_args = ("-lv",)  # lists the voices; ``flite --version`` exits 1

    def voices(self) -> list[Voice]:
        return list(_FLITE_VOICES)

    async def synthesize(self, text: str, voice: Voice, *, rate: float = 1.0, pitch: float = 0.0) -> Synthesized:
        _check_request(self.name, text, voice, rate, pitch)
        if voice not in _FLITE_VOICES:
            raise ValidationFailedError(f"{voice.native!r} is not a flite voice.")
        shift = 2.0 ** (pitch / 12.0)
        if pitch and voice.native in _FLITE_FIXED_PITCH:
            # Spoken slower by the shift, then played faster by it: the pitch moves and the length comes back.
            options = ["-voice", voice.native, "--setf", f"duration_stretch={shift / rate:.4f}"]
            spoken = await self._speak(options, False, text)
            return await asyncio.to_thread(_played_faster, spoken, shift)
        options = ["-voice", voice.native, "--setf", f"duration_stretch={1.0 / rate:.4f}"]
        if pitch:
            options += ["--setf", f"f0_shift={shift:.4f}"]
        return await self._speak(options, False, text)


def _played_faster(clip: Synthesized, factor: float) -> Synthesized:
    """The clip played ``factor`` times faster at its own rate: higher (or lower) and shorter by that factor."""
    samples, rate = audio.decode(clip.wav)
    faster = audio.resample_samples(samples, round(rate * factor), rate)
    return Synthesized(wav=audio.encode_wav(faster, rate), sample_rate=rate, duration_s=len(faster) / rate,
                       engine=clip.engine)  # fmt: skip


_EDGE_HOST = "speech.platform.bing.com"
_EDGE_VOICES: tuple[tuple[str, str, Gender, str], ...] = (
    ("en-US-AriaNeural", "en-US", "female", "English (US), Aria"),
    ("en-US-GuyNeural", "en-US", "male", "English (US), Guy"),
    ("en-US-JennyNeural", "en-US", "female", "English (US), Jenny"),
    ("en-US-ChristopherNeural", "en-US", "male", "English (US), Christopher"),
    ("en-GB-SoniaNeural", "en-GB", "female", "English (UK), Sonia"),
    ("en-GB-RyanNeural", "en-GB", "male", "English (UK), Ryan"),
    ("en-AU-NatashaNeural", "en-AU", "female", "English (Australia), Natasha"),
    ("de-DE-KatjaNeural", "de-DE", "female", "German, Katja"),
    ("de-DE-ConradNeural", "de-DE", "male", "German, Conrad"),
    ("fr-FR-DeniseNeural", "fr-FR", "female", "French, Denise"),
    ("fr-FR-HenriNeural", "fr-FR", "male", "French, Henri"),
    ("es-ES-ElviraNeural", "es-ES", "female", "Spanish, Elvira"),
    ("it-IT-ElsaNeural", "it-IT", "female", "Italian, Elsa"),
    ("pt-BR-FranciscaNeural", "pt-BR", "female", "Portuguese (Brazil), Francisca"),
    ("ja-JP-NanamiNeural", "ja-JP", "female", "Japanese, Nanami"),
    ("zh-CN-XiaoxiaoNeural", "zh-CN", "female", "Chinese (Mandarin), Xiaoxiao"),
)
# Typical speaking F0 per gender, to turn semitones into the Hz offsets edge-tts takes.
_EDGE_BASE_F0 = {"female": 210.0, "male": 120.0, "neutral": 165.0}
_EDGE_VOICE_NAME = re.compile(r"^[a-z]{2,3}-[A-Z]{2}-[A-Za-z]+Neural$")


class EdgeTtsEngine:
    """Microsoft Edge's online neural voices through ``edge-tts`` (needs the internet; the text leaves the host).

    A failed attempt is remembered for ``remember_failure_s`` so a service without network does not retry (and
    wait) on every line of a podcast; meanwhile ``available()`` returns the reason. The service must start
    answering within ``connect_timeout_s`` and finish within ``deadline_s``; audio is kept in memory until the
    stream is complete, then decoded from MP3 (24 kHz mono) to WAV.
    """

    name = "edge"
    online = True

    def __init__(
        self,
        *,
        connect_timeout_s: float = 3.0,
        deadline_s: float = 30.0,
        remember_failure_s: float = 60.0,
        proxy: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connect_timeout_s = connect_timeout_s
        self._deadline_s = deadline_s
        self._remember_failure_s = remember_failure_s
        self._proxy = proxy
        self._clock = clock
        self._installed = importlib.util.find_spec("edge_tts") is not None
        self._failure: tuple[float, str] | None = None  # (when, reason)
        self._reachable_at: float | None = None
        self._probe_lock = asyncio.Lock()

    def voices(self) -> list[Voice]:
        return [
            Voice(id=f"edge:{short}", engine=self.name, language=language, gender=gender, name=f"{label} — Edge")
            for short, language, gender, label in _EDGE_VOICES
        ]

    def _remembered(self) -> str | None:
        if self._failure is not None and self._clock() - self._failure[0] < self._remember_failure_s:
            return self._failure[1]
        return None

    def _remember(self, reason: str) -> str:
        self._failure = (self._clock(), reason)
        self._reachable_at = None
        return reason

    def _probe_target(self) -> tuple[str, int]:
        """Where a connection would go first: our proxy, the environment's (edge-tts trusts it), or the service."""
        proxy = self._proxy
        if proxy is None and not urllib.request.proxy_bypass(_EDGE_HOST):
            proxy = urllib.request.getproxies().get("https") or urllib.request.getproxies().get("wss")
        if proxy:
            parsed = urllib.parse.urlsplit(proxy if "://" in proxy else "http://" + proxy)
            return parsed.hostname or "", parsed.port or (443 if parsed.scheme == "https" else 80)
        return _EDGE_HOST, 443

    async def available(self) -> str | None:
        """The remembered failure, else a TCP connect to the service (or proxy) at most every 30 s."""
        if not self._installed:
            return "edge-tts is not installed (pip install edge-tts)"
        if (reason := self._remembered()) is not None:
            return reason
        async with self._probe_lock:
            if (reason := self._remembered()) is not None:
                return reason
            if self._reachable_at is not None and self._clock() - self._reachable_at < _AVAILABLE_TTL_S:
                return None
            host, port = self._probe_target()
            try:
                async with asyncio.timeout(self._connect_timeout_s):
                    _, writer = await asyncio.open_connection(host, port)
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
            except TimeoutError:
                return self._remember(f"edge-tts: {host}:{port} did not answer within {self._connect_timeout_s:g} s")
            except OSError as exc:
                return self._remember(f"edge-tts: cannot reach {host}:{port} ({exc.strerror or exc})")
            self._reachable_at = self._clock()
            return None

    @staticmethod
    def rate_option(rate: float) -> str:
        """edge-tts rate: a signed percentage change ("+25%")."""
        return f"{round((rate - 1.0) * 100):+d}%"

    @staticmethod
    def pitch_option(semitones: float, gender: Gender) -> str:
        """edge-tts pitch: a signed change in Hz ("+12Hz"), from semitones around the gender's typical F0."""
        return f"{round(_EDGE_BASE_F0[gender] * (2.0 ** (semitones / 12.0) - 1.0)):+d}Hz"

    async def synthesize(self, text: str, voice: Voice, *, rate: float = 1.0, pitch: float = 0.0) -> Synthesized:
        _check_request(self.name, text, voice, rate, pitch)
        if not _EDGE_VOICE_NAME.match(voice.native):
            raise ValidationFailedError(f"{voice.native!r} is not an Edge neural voice name.")
        if not self._installed:
            raise TtsUnavailableError("edge-tts is not installed (pip install edge-tts)", details={"engine": self.name})
        if (reason := self._remembered()) is not None:
            raise TtsUnavailableError(reason, details={"engine": self.name})
        mp3 = await self._stream(text, voice, rate, pitch)
        return await _finish(mp3, self.name, "edge-tts")

    async def _stream(self, text: str, voice: Voice, rate: float, pitch: float) -> bytes:
        """Collect the whole MP3 in memory; connection-level failures are remembered, a refusal of this text not."""
        import aiohttp
        import edge_tts
        from edge_tts.exceptions import EdgeTTSException, NoAudioReceived

        communicate = edge_tts.Communicate(
            text,
            voice.native,
            rate=self.rate_option(rate),
            pitch=self.pitch_option(pitch, voice.gender),
            proxy=self._proxy,
            connect_timeout=max(1, math.ceil(self._connect_timeout_s)),
            receive_timeout=max(1, math.ceil(self._deadline_s)),
        )
        loop = asyncio.get_running_loop()
        started = loop.time()
        chunks: list[bytes] = []
        answered = False
        try:
            # First the service must answer within the connect timeout, then finish within the overall deadline.
            async with asyncio.timeout_at(started + min(self._connect_timeout_s, self._deadline_s)) as deadline:
                async with contextlib.aclosing(communicate.stream()) as stream:
                    async for message in stream:
                        if not answered:
                            answered = True
                            deadline.reschedule(started + self._deadline_s)
                        if message["type"] == "audio":
                            chunks.append(message["data"])
        except TimeoutError as exc:
            limit = self._deadline_s if answered else self._connect_timeout_s
            what = "did not finish" if answered else "did not answer"
            reason = self._remember(f"edge-tts: the service {what} within {limit:g} s")
            raise TtsUnavailableError(reason, details={"engine": self.name}) from exc
        except NoAudioReceived as exc:
            raise TtsUnavailableError(
                "edge-tts: the service returned no audio for this text", details={"engine": self.name}
            ) from exc
        except (aiohttp.ClientError, OSError, EdgeTTSException) as exc:
            reason = self._remember(f"edge-tts: {type(exc).__name__}: {exc}")
            raise TtsUnavailableError(reason, details={"engine": self.name}) from exc
        self._failure = None
        if not chunks:
            raise TtsUnavailableError("edge-tts: the service returned no audio", details={"engine": self.name})
        return b"".join(chunks)


def installed_engines() -> list[TtsEngine]:
    """One object per engine this build knows; whether each can run is for ``available()`` to say."""
    return [EspeakEngine(), FliteEngine(), EdgeTtsEngine()]
