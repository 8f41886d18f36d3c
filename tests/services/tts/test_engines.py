"""The TTS engines against the real world: espeak-ng speaks words a recogniser hears back, and edge-tts without
network fails fast, says why and remembers it (proved by counting the connections a real silent proxy receives)."""

from __future__ import annotations

import asyncio
import io
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import edge_tts
import numpy as np
import pytest
import soundfile as sf

from services.errors import ValidationFailedError
from services.tts import audio
from services.tts.engines import (
    EdgeTtsEngine,
    EspeakEngine,
    FliteEngine,
    Synthesized,
    TtsEngine,
    TtsUnavailableError,
    Voice,
    installed_engines,
)
from tests.services.tts.listen import heard

SENTENCES = [
    "the quick brown fox jumps over the lazy dog",
    "she sells sea shells by the sea shore",
    "open the pod bay doors please",
    "seven green apples fell from the tall tree",
]
ESPEAK = EspeakEngine()
EN_US = next(v for v in ESPEAK.voices() if v.id == "espeak:en-us")
EN_US_FEMALE = next(v for v in ESPEAK.voices() if v.id == "espeak:en-us+f3")


def f0_hz(clip: Synthesized) -> float:
    """Median pitch of the voiced 40 ms frames, by autocorrelation: enough to tell a voice moved up or down."""
    samples, rate = audio.decode(clip.wav)
    frame, found = int(0.04 * rate), []
    window = np.hanning(frame)
    low, high = int(rate / 500), int(rate / 50)
    for start in range(0, len(samples) - frame, frame // 2):
        chunk = samples[start : start + frame] * window
        if audio.rms(chunk) < 0.02:
            continue
        corr = np.correlate(chunk, chunk, "full")[frame - 1 :]
        lag = low + int(np.argmax(corr[low:high]))
        if corr[lag] > 0.5 * corr[0]:
            found.append(rate / lag)
    assert len(found) > 20, "too few voiced frames to measure pitch"
    return float(np.median(found))


async def test_espeak_speaks_a_sentence_as_real_wav() -> None:
    started = time.perf_counter()
    clip = await ESPEAK.synthesize(SENTENCES[0], EN_US)
    elapsed = time.perf_counter() - started
    print(f"espeak-ng: {clip.duration_s:.2f} s of audio in {elapsed * 1000:.0f} ms, x{clip.duration_s / elapsed:.0f}")

    assert clip.wav[:4] == b"RIFF" and clip.wav[8:12] == b"WAVE" and clip.engine == "espeak"
    info = sf.info(io.BytesIO(clip.wav))
    assert (info.format, info.subtype, info.channels, info.samplerate) == ("WAV", "PCM_16", 1, 22050)
    assert clip.sample_rate == 22050 and clip.duration_s == pytest.approx(info.frames / 22050)
    words = len(SENTENCES[0].split())
    assert words * 60 / 175 * 0.6 < clip.duration_s < words * 60 / 175 * 1.6  # 175 words a minute, give or take
    samples, _ = audio.decode(clip.wav)
    assert audio.dbfs(audio.rms(samples)) > -35  # well above silence (measured about -21 dBFS)
    assert heard(clip.wav, SENTENCES) == SENTENCES[0]


@pytest.mark.parametrize("voice", [EN_US, EN_US_FEMALE], ids=["male", "female"])
async def test_the_recogniser_hears_each_sentence_exactly(voice: Voice) -> None:
    for sentence in SENTENCES:
        clip = await ESPEAK.synthesize(sentence.capitalize() + ".", voice)
        assert heard(clip.wav, SENTENCES) == sentence


async def test_the_recogniser_hears_nothing_in_silence() -> None:
    # the check above means something only if silence and noise are not matched to a sentence
    assert heard(audio.encode_wav(np.zeros(32000, dtype=np.float32), 16000), SENTENCES) == ""
    noise = np.random.default_rng(1).normal(0, 0.1, 32000).astype(np.float32)
    assert heard(audio.encode_wav(noise, 16000), SENTENCES) == ""


async def test_rate_changes_the_speed() -> None:
    normal, fast, slow, brisk = await asyncio.gather(
        *(ESPEAK.synthesize(SENTENCES[1], EN_US, rate=rate) for rate in (1.0, 2.0, 0.5, 1.25))
    )
    assert fast.duration_s / normal.duration_s < 0.7
    assert slow.duration_s / normal.duration_s > 1.4
    assert brisk.duration_s < normal.duration_s
    assert heard(brisk.wav, SENTENCES) == SENTENCES[1]  # still words (2x is too fast for the recogniser's model)


async def test_pitch_moves_the_voice_up_and_down_in_semitones() -> None:
    base, up, down = await asyncio.gather(
        *(ESPEAK.synthesize(SENTENCES[0], EN_US_FEMALE, pitch=pitch) for pitch in (0.0, 6.0, -6.0))
    )
    assert len({base.wav, up.wav, down.wav}) == 3
    assert 1.2 < f0_hz(up) / f0_hz(base) < 1.7  # 6 semitones is a factor of 1.41
    assert 0.6 < f0_hz(down) / f0_hz(base) < 0.85  # and 0.71 down


async def test_text_that_looks_like_an_option_is_spoken() -> None:
    clip = await ESPEAK.synthesize("-open the pod bay doors please", EN_US)
    assert heard(clip.wav, SENTENCES) == SENTENCES[2]
    clip = await ESPEAK.synthesize("--version -w /tmp/x.wav", EN_US)
    assert clip.duration_s > 1.0  # words, not the version banner (which would be no audio at all)


async def test_every_listed_espeak_voice_speaks() -> None:
    voices = ESPEAK.voices()
    assert len({v.id for v in voices}) == len(voices) >= 30
    assert {v.gender for v in voices} == {"female", "male"}
    for voice in voices:
        clip = await ESPEAK.synthesize("one two three", voice)
        assert clip.duration_s > 0.3, voice.id


async def test_synthesis_leaves_no_temp_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # a temp dir of its own: other workers synthesise too
    await asyncio.gather(*(ESPEAK.synthesize(s, EN_US) for s in SENTENCES))
    assert list(tmp_path.iterdir()) == []


async def test_bad_requests_are_refused_before_anything_runs() -> None:
    with pytest.raises(ValidationFailedError):
        await ESPEAK.synthesize("   ", EN_US)
    with pytest.raises(ValidationFailedError):
        await ESPEAK.synthesize("hello", EN_US, rate=3.0)
    with pytest.raises(ValidationFailedError):
        await ESPEAK.synthesize("hello", EN_US, pitch=-13)
    with pytest.raises(ValidationFailedError):
        await ESPEAK.synthesize("hello", EdgeTtsEngine().voices()[0])
    injected = Voice(id="espeak:-w/tmp/evil", engine="espeak", language="en-US", gender="male", name="x")
    with pytest.raises(ValidationFailedError):
        await ESPEAK.synthesize("hello", injected)


async def test_espeak_missing_names_the_package() -> None:
    engine = EspeakEngine(binary="/nonexistent/espeak-ng")
    reason = await engine.available()
    assert reason is not None and "apt-get install espeak-ng" in reason
    with pytest.raises(TtsUnavailableError, match="apt-get install espeak-ng"):
        await engine.synthesize("hello", EN_US)
    assert await ESPEAK.available() is None


async def test_flite_missing_names_the_package() -> None:
    engine = FliteEngine(binary="/nonexistent/flite")
    reason = await engine.available()
    assert reason is not None and "apt-get install flite" in reason
    with pytest.raises(TtsUnavailableError, match="apt-get install flite"):
        await engine.synthesize("hello", engine.voices()[0])


def test_the_engines_and_their_voices() -> None:
    engines = installed_engines()
    assert [e.name for e in engines] == ["espeak", "flite", "edge"]
    assert all(isinstance(e, TtsEngine) for e in engines)
    assert [e.online for e in engines] == [False, False, True]
    voices = [v for e in engines for v in e.voices()]
    assert len({v.id for v in voices}) == len(voices)
    assert all(v.id.startswith(v.engine + ":") and v.language and v.name for v in voices)
    assert len(EdgeTtsEngine().voices()) >= 10


def test_edge_rate_and_pitch_are_strings_edge_tts_accepts() -> None:
    assert [EdgeTtsEngine.rate_option(r) for r in (0.5, 1.0, 1.25, 2.0)] == ["-50%", "+0%", "+25%", "+100%"]
    assert EdgeTtsEngine.pitch_option(0, "female") == "+0Hz"
    assert EdgeTtsEngine.pitch_option(12, "male") == "+120Hz"
    assert EdgeTtsEngine.pitch_option(-12, "female") == "-105Hz"
    for voice in EdgeTtsEngine().voices():  # edge-tts validates voice, rate and pitch when constructed
        edge_tts.Communicate("x", voice.native, rate=EdgeTtsEngine.rate_option(0.5),
                             pitch=EdgeTtsEngine.pitch_option(-3.5, voice.gender))  # fmt: skip


async def test_edge_without_network_fails_fast_and_says_why() -> None:
    timeout = 3.0
    engine = EdgeTtsEngine(connect_timeout_s=timeout)
    voice = engine.voices()[0]
    started = time.monotonic()
    with pytest.raises(TtsUnavailableError) as raised:
        await engine.synthesize("hello there", voice)
    assert time.monotonic() - started < 2 * timeout
    assert raised.value.message.startswith("edge-tts:")
    assert await engine.available() == raised.value.message  # remembered

    fresh = EdgeTtsEngine(connect_timeout_s=timeout)
    started = time.monotonic()
    reason = await fresh.available()
    assert reason is not None and "speech.platform.bing.com" in reason
    assert time.monotonic() - started < 2 * timeout


@dataclass
class SilentServer:
    """A real TCP server that accepts, reads what it is sent and never answers; counts who tried to talk."""

    port: int = 0
    attempts: int = 0
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        if await reader.read(1024):
            self.attempts += 1
            while await reader.read(1024):
                pass


@pytest.fixture
async def silent_proxy() -> AsyncIterator[SilentServer]:
    silent = SilentServer()
    server = await asyncio.start_server(silent.handle, "127.0.0.1", 0)
    silent.port = server.sockets[0].getsockname()[1]
    yield silent
    for writer in silent.writers:
        writer.close()
    server.close()


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_edge_failure_is_remembered_and_not_retried(silent_proxy: SilentServer) -> None:
    clock = ManualClock()
    timeout = 1.0
    engine = EdgeTtsEngine(connect_timeout_s=timeout, proxy=f"http://127.0.0.1:{silent_proxy.port}", clock=clock)
    voice = engine.voices()[0]

    started = time.monotonic()
    with pytest.raises(TtsUnavailableError, match="did not answer within 1 s"):
        await engine.synthesize("hello there", voice)
    took = time.monotonic() - started
    assert timeout * 0.9 < took < 2 * timeout and silent_proxy.attempts == 1

    reason = await engine.available()
    assert reason is not None and "did not answer" in reason
    started = time.monotonic()
    with pytest.raises(TtsUnavailableError):
        await engine.synthesize("hello again", voice)
    assert time.monotonic() - started < took / 10
    assert silent_proxy.attempts == 1  # neither available() nor the second attempt went to the network

    clock.now += 61  # a minute later it tries again
    with pytest.raises(TtsUnavailableError):
        await engine.synthesize("hello again", voice)
    assert silent_proxy.attempts == 2


@pytest.mark.parametrize("voice", FliteEngine().voices(), ids=lambda voice: voice.native)
async def test_flite_speaks_each_voice_heard_exactly_and_rate_and_pitch_take_effect(voice: Voice) -> None:
    engine = FliteEngine()
    assert await engine.available() is None, "setup installs flite (scripts/setup)"
    clip = await engine.synthesize(SENTENCES[3], voice)
    info = sf.info(io.BytesIO(clip.wav))
    assert (info.format, info.channels) == ("WAV", 1) and clip.engine == "flite" and clip.duration_s > 1
    assert heard(clip.wav, SENTENCES) == SENTENCES[3]
    fast = await engine.synthesize(SENTENCES[3], voice, rate=2.0)
    assert fast.duration_s < 0.7 * clip.duration_s
    longer = f"{SENTENCES[0]}, {SENTENCES[1]}"  # enough voiced frames to measure the pitch
    normal, higher = await engine.synthesize(longer, voice), await engine.synthesize(longer, voice, pitch=7)
    assert f0_hz(higher) > 1.25 * f0_hz(normal)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_program_that_exits_without_reading_its_input_is_judged_by_its_exit_status(loop: str) -> None:
    """What once stopped the app from starting: flite's probe fed an empty stdin to a program that had already
    exited, and uvloop (the server's loop) raised about the closed pipe."""
    import uvloop

    from services.tts.engines import _run_program

    async def run() -> None:
        for stdin in (b"", b"x" * (1 << 20)):
            await _run_program(["true"], stdin, 10.0, "true", "test")  # exit 0: fine, read or not
            with pytest.raises(TtsUnavailableError, match="exit 1"):
                await _run_program(["false"], stdin, 10.0, "false", "test")
        assert await FliteEngine().available() is None

    (uvloop.run if loop == "uvloop" else asyncio.run)(run())
