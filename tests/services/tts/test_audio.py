"""The audio helpers on real speech and exact tones: MP3 that decodes back to the same words, joins whose pauses are
silent where the spans say, resampling that keeps frequencies and drops what cannot be kept, levels that land."""

from __future__ import annotations

import asyncio
import io
import itertools
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import soundfile as sf

from services.tts import audio
from services.tts.engines import EspeakEngine, Synthesized
from tests.services.tts.listen import heard

SENTENCES = [
    "the quick brown fox jumps over the lazy dog",
    "she sells sea shells by the sea shore",
    "open the pod bay doors please",
]


@pytest.fixture(scope="module")
def spoken() -> list[Synthesized]:
    """One espeak-ng clip per sentence (22.05 kHz), male and female voices alternating."""
    engine = EspeakEngine()
    voices = {v.id: v for v in engine.voices()}

    async def speak() -> list[Synthesized]:
        return [
            await engine.synthesize(s, voices["espeak:en-us" if i % 2 == 0 else "espeak:en-us+f3"])
            for i, s in enumerate(SENTENCES)
        ]

    with ThreadPoolExecutor(1) as pool:  # its own loop, even if a test loop is running in this thread
        return pool.submit(asyncio.run, speak()).result()


def tone(frequency: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def peak_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


def test_to_mp3_is_a_real_mp3_of_the_same_speech(spoken: list[Synthesized]) -> None:
    clip = spoken[0]
    mp3 = audio.to_mp3(clip.wav, bitrate_kbps=64)
    assert mp3[:3] == b"ID3" or (mp3[0] == 0xFF and mp3[1] & 0xE0 == 0xE0)
    info = sf.info(io.BytesIO(mp3))
    assert (info.format, info.channels, info.samplerate) == ("MP3", 1, 22050)
    samples, rate = sf.read(io.BytesIO(mp3), dtype="float32")
    assert len(samples) / rate == pytest.approx(clip.duration_s, abs=0.1)
    assert len(mp3) * 8 / clip.duration_s / 1000 == pytest.approx(64, rel=0.15)  # constant 64 kbps
    assert heard(mp3, SENTENCES) == SENTENCES[0]  # the words survive the encoding
    small = audio.to_mp3(clip.wav, bitrate_kbps=32)
    assert len(small) < 0.6 * len(mp3)


def test_wav_info_reads_wav_and_mp3(spoken: list[Synthesized]) -> None:
    clip = spoken[1]
    assert audio.wav_info(clip.wav) == (22050, 1, pytest.approx(clip.duration_s))
    rate, channels, duration = audio.wav_info(audio.to_mp3(clip.wav))
    assert (rate, channels) == (22050, 1) and duration == pytest.approx(clip.duration_s, abs=0.1)
    stereo = io.BytesIO()
    sf.write(stereo, np.zeros((16000, 2), dtype=np.float32), 16000, format="WAV", subtype="PCM_16")
    assert audio.wav_info(stereo.getvalue()) == (16000, 2, 1.0)


def test_resample_keeps_frequencies_and_drops_what_cannot_be_kept() -> None:
    wav = audio.encode_wav(tone(1000, 2.0, 22050), 22050)
    out = audio.resample(wav, 16000)
    assert audio.wav_info(out) == (16000, 1, pytest.approx(2.0, abs=1e-4))
    samples, rate = audio.decode(out)
    assert peak_frequency(samples, rate) == pytest.approx(1000, abs=2)
    assert audio.rms(samples[1000:-1000]) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)
    # 10 kHz exists at 22.05 kHz but not at 16 kHz: it must vanish, not fold down to 6 kHz
    above = audio.resample_samples(tone(10000, 2.0, 22050), 22050, 16000)
    assert audio.rms(above[1000:-1000]) < 1e-3
    up = audio.resample_samples(tone(440, 1.0, 16000), 16000, 24000)
    assert len(up) == 24000 and peak_frequency(up, 24000) == pytest.approx(440, abs=2)


def test_concat_with_pauses_places_clips_where_the_spans_say(spoken: list[Synthesized]) -> None:
    beep = Synthesized(wav=audio.encode_wav(tone(440, 0.75, 24000), 24000), sample_rate=24000, duration_s=0.75,
                       engine="test")  # fmt: skip
    clips = [spoken[0], beep, spoken[1], spoken[2]]
    wav, spans = audio.concat_with_pauses(clips, pause_s=0.5, sample_rate=24000)

    rate, channels, total = audio.wav_info(wav)
    assert (rate, channels) == (24000, 1)
    assert total == pytest.approx(sum(c.duration_s for c in clips) + 3 * 0.5, abs=0.005)
    assert len(spans) == 4 and spans[0][0] == 0 and spans[-1][1] == pytest.approx(total, abs=1e-3)
    for clip, (start, end) in zip(clips, spans, strict=True):
        assert end - start == pytest.approx(clip.duration_s, abs=0.001)
    samples, _ = audio.decode(wav)
    for (_, gap_start), (gap_end, _) in itertools.pairwise(spans):
        assert gap_end - gap_start == pytest.approx(0.5, abs=0.001)
        assert audio.rms(samples[round(gap_start * rate) : round(gap_end * rate)]) < 1e-4  # silent
    start, end = spans[1]
    assert peak_frequency(samples[round(start * rate) : round(end * rate)], rate) == pytest.approx(440, abs=3)
    for index, sentence in ((0, SENTENCES[0]), (2, SENTENCES[1]), (3, SENTENCES[2])):
        start, end = spans[index]
        segment = audio.encode_wav(samples[round(start * rate) : round(end * rate)], rate)
        assert heard(segment, SENTENCES) == sentence


def test_normalise_brings_a_quiet_tone_to_the_target() -> None:
    quiet = audio.encode_wav(tone(440, 2.0, 16000, amplitude=0.01), 16000)  # about -43 dBFS
    samples, _ = audio.decode(audio.normalise(quiet, target_dbfs=-16))
    assert 20 * np.log10(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) == pytest.approx(-16, abs=0.1)


def test_normalise_brings_quiet_speech_to_the_target_without_clipping(spoken: list[Synthesized]) -> None:
    samples, rate = audio.decode(spoken[0].wav)
    quiet = audio.encode_wav(samples * 0.02, rate)  # 34 dB down
    assert audio.loudness_dbfs(quiet) < -50
    loud = audio.normalise(quiet, target_dbfs=-16)
    assert audio.loudness_dbfs(loud) == pytest.approx(-16, abs=0.3)
    out, _ = audio.decode(loud)
    assert np.max(np.abs(out)) <= 10 ** (-1 / 20) + 1e-4  # speech peaks ~19 dB over its level: limited, not clipped
    assert heard(loud, SENTENCES) == SENTENCES[0]
    softer = audio.normalise(spoken[0].wav, target_dbfs=-30)  # and turning down works the same way
    assert audio.loudness_dbfs(softer) == pytest.approx(-30, abs=0.3)


def test_normalise_leaves_silence_alone() -> None:
    silence = audio.encode_wav(np.zeros(8000, dtype=np.float32), 16000)
    samples, _ = audio.decode(audio.normalise(silence))
    assert not samples.any()
