"""Audio helpers for TTS output and podcast assembly: read, resample, join, level and encode.

Everything here is synchronous CPU and memory work on whole clips (seconds to minutes of mono audio), so async
callers run it through ``asyncio.to_thread``. Samples travel as float32 mono in [-1, 1]; files as bytes. WAV out is
always PCM 16-bit mono, the one format the rest of the app has to handle.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import soundfile as sf

if TYPE_CHECKING:
    from services.tts.engines import Synthesized

Samples = npt.NDArray[np.float32]

# MP3 sample rates (MPEG-1, 2 and 2.5); anything else is resampled to 24 kHz before encoding.
MP3_RATES = frozenset({8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000})
_FRAME_S = 0.05  # loudness is measured over 50 ms frames
_ABSOLUTE_GATE_DBFS = -70.0  # frames below this are silence, whatever the clip
_RELATIVE_GATE_DB = 20.0  # and frames this far below the clip's mean are pauses between words


def wav_info(data: bytes) -> tuple[int, int, float]:
    """(sample_rate, channels, duration_s) of a WAV, MP3 or any file libsndfile reads, without decoding it all."""
    info = sf.info(io.BytesIO(data))
    return int(info.samplerate), int(info.channels), float(info.frames) / float(info.samplerate)


def decode(data: bytes) -> tuple[Samples, int]:
    """Decode any libsndfile format (WAV, MP3, FLAC, OGG) to float32 mono, averaging channels."""
    samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return np.ascontiguousarray(samples.mean(axis=1), dtype=np.float32), int(rate)


def encode_wav(samples: Samples, sample_rate: int) -> bytes:
    """A complete PCM 16-bit mono WAV; samples outside [-1, 1] are clipped rather than wrapped."""
    out = io.BytesIO()
    sf.write(out, np.clip(samples, -1.0, 1.0), sample_rate, format="WAV", subtype="PCM_16")
    return out.getvalue()


def as_wav(data: bytes) -> tuple[bytes, int, float]:
    """(wav, sample_rate, duration_s) as PCM 16-bit mono WAV; a file that already is one passes through untouched."""
    info = sf.info(io.BytesIO(data))
    if info.format == "WAV" and info.subtype == "PCM_16" and info.channels == 1:
        return data, int(info.samplerate), float(info.frames) / float(info.samplerate)
    samples, rate = decode(data)
    return encode_wav(samples, rate), rate, len(samples) / rate


def _smooth(n: int) -> int:
    """The smallest 2^i·3^j·5^k ≥ n: FFT lengths of that form are fast, awkward ones (large primes) are not."""
    best = 1 << max(0, n - 1).bit_length()
    five = 1
    while five < best:
        three = five
        while three < best:
            two = three
            while two < n:
                two *= 2
            best = min(best, two)
            three *= 3
        five *= 5
    return best


def resample_samples(samples: Samples, from_rate: int, to_rate: int) -> Samples:
    """Band-limited resampling through the FFT (no aliasing when going down, exact rate ratio).

    The clip is padded with silence to a length that is a whole number of rate periods and FFT-friendly, so input
    and output lengths are exact multiples of the reduced ratio, the transforms stay fast (10 min of 24 kHz in about
    a second), and the FFT's wrap-around ringing lands in the padding.
    """
    if from_rate == to_rate or len(samples) == 0:
        return samples.astype(np.float32, copy=True)
    common = math.gcd(from_rate, to_rate)
    step_in, step_out = from_rate // common, to_rate // common
    lead = -(-1024 // step_in)  # periods of silence before the clip
    periods = _smooth(-(-(len(samples) + 2048) // step_in) + lead)
    n_in, n_out = periods * step_in, periods * step_out
    padded = np.zeros(n_in)
    padded[lead * step_in : lead * step_in + len(samples)] = samples
    spectrum = np.fft.rfft(padded)
    bins = n_out // 2 + 1
    if bins <= len(spectrum):
        spectrum = spectrum[:bins].copy()
        if n_out % 2 == 0:
            spectrum[-1] *= 0.5  # the new Nyquist bin holds both halves of a real signal's energy
    else:
        spectrum = np.concatenate([spectrum, np.zeros(bins - len(spectrum), dtype=spectrum.dtype)])
    out = np.fft.irfft(spectrum, n_out) * (n_out / n_in)
    start = lead * step_out
    return out[start : start + round(len(samples) * to_rate / from_rate)].astype(np.float32)


def resample(wav: bytes, sample_rate: int) -> bytes:
    """The clip (any readable format) as a PCM 16-bit mono WAV at ``sample_rate``."""
    samples, rate = decode(wav)
    return encode_wav(resample_samples(samples, rate, sample_rate), sample_rate)


def join_with_gaps(
    parts: Sequence[Samples], gaps_s: Sequence[float], sample_rate: int
) -> tuple[bytes, list[tuple[float, float]]]:
    """Join sample arrays already at ``sample_rate`` with ``gaps_s[i]`` seconds of silence before part ``i + 1``.

    Returns the WAV and each part's (start_s, end_s) in it, so a transcript or chapter marks can point into it.
    """
    if any(gap < 0 for gap in gaps_s):
        raise ValueError("pauses must not be negative")
    joined: list[Samples] = []
    spans: list[tuple[float, float]] = []
    position = 0
    for index, samples in enumerate(parts):
        if index:
            gap = np.zeros(round(gaps_s[index - 1] * sample_rate), dtype=np.float32)
            joined.append(gap)
            position += len(gap)
        joined.append(samples)
        spans.append((position / sample_rate, (position + len(samples)) / sample_rate))
        position += len(samples)
    return encode_wav(np.concatenate(joined) if joined else np.zeros(0, dtype=np.float32), sample_rate), spans


def concat_with_pauses(
    clips: Sequence[Synthesized], pause_s: float, sample_rate: int
) -> tuple[bytes, list[tuple[float, float]]]:
    """Join clips at one rate with ``pause_s`` of silence between them (none before the first or after the last)."""
    if pause_s < 0:
        raise ValueError("pause_s must not be negative")
    parts = [resample_samples(*decode(clip.wav), sample_rate) for clip in clips]
    return join_with_gaps(parts, [pause_s] * max(0, len(parts) - 1), sample_rate)


def dbfs(level: float) -> float:
    """An amplitude (1.0 = full scale) in dBFS; silence is -inf."""
    return 20.0 * math.log10(level) if level > 0 else -math.inf


def rms(samples: npt.NDArray[np.floating[Any]]) -> float:
    """Plain root mean square of the samples (0.0 for none)."""
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if len(samples) else 0.0


def _gated_rms(samples: Samples, sample_rate: int) -> float:
    """RMS over the 50 ms frames that carry speech: not digital silence, not pauses well below the clip's mean.

    A gate like EBU R128's (without its K-weighting), so the pauses of a podcast do not make it read as quiet.
    """
    frame = max(1, round(_FRAME_S * sample_rate))
    if len(samples) < frame:
        return rms(samples)
    usable = samples[: len(samples) // frame * frame].astype(np.float64)
    power = np.mean(np.square(usable.reshape(-1, frame)), axis=1)
    loud = power[power > 10 ** (_ABSOLUTE_GATE_DBFS / 10)]
    if not len(loud):
        return 0.0
    loud = loud[loud > np.mean(loud) * 10 ** (-_RELATIVE_GATE_DB / 10)]
    return float(np.sqrt(np.mean(loud)))


def loudness_dbfs(wav: bytes) -> float:
    """The clip's speech level in dBFS (RMS of the gated frames; a full-scale sine reads about -3)."""
    samples, rate = decode(wav)
    return dbfs(_gated_rms(samples, rate))


def _limit(samples: npt.NDArray[np.float64], ceiling: float) -> npt.NDArray[np.float64]:
    """Soft-knee peak limiter: untouched below half the ceiling, then bent smoothly so no sample reaches it."""
    knee = ceiling / 2
    magnitude = np.abs(samples)
    over = magnitude > knee
    bent = knee + (ceiling - knee) * np.tanh((magnitude[over] - knee) / (ceiling - knee))
    out = samples.copy()
    out[over] = np.sign(samples[over]) * bent
    return out


def normalise(wav: bytes, target_dbfs: float = -16.0, peak_dbfs: float = -1.0) -> bytes:
    """Bring the speech level (``loudness_dbfs``) to ``target_dbfs`` without clipping.

    Speech peaks sit ~19 dB above its RMS, so a plain gain to -16 dBFS would clip; the gain is applied with a soft
    limiter under ``peak_dbfs`` and refined a few times so the limited result still lands on the target. Silence
    comes back unchanged.
    """
    samples, rate = decode(wav)
    level = _gated_rms(samples, rate)
    if level == 0.0:
        return encode_wav(samples, rate)
    target = 10 ** (target_dbfs / 20)
    ceiling = 10 ** (peak_dbfs / 20)
    source = samples.astype(np.float64)
    gain = target / level
    out = _limit(source * gain, ceiling)
    for _ in range(4):
        reached = _gated_rms(out.astype(np.float32), rate)
        if reached == 0.0 or abs(dbfs(reached) - target_dbfs) < 0.05:
            break
        gain *= target / reached
        out = _limit(source * gain, ceiling)
    return encode_wav(out.astype(np.float32), rate)


def _mp3_compression(bitrate_kbps: int, sample_rate: int) -> float:
    """libsndfile's compression level for a constant bitrate: it maps 0..1 linearly onto the MPEG version's range
    (MPEG-1 320..32, MPEG-2 160..8, MPEG-2.5 64..8 kbps) and truncates, so aim a quarter kbps above the target."""
    if sample_rate >= 32000:
        high, low = 320.0, 32.0
    elif sample_rate >= 16000:
        high, low = 160.0, 8.0
    else:
        high, low = 64.0, 8.0
    wanted = min(max(float(bitrate_kbps), max(low, 16.0)), high)
    return min(max((high - wanted - 0.25) / (high - low), 0.0), 1.0)


def to_mp3(wav: bytes, bitrate_kbps: int = 64) -> bytes:
    """Encode a clip as constant-bitrate mono MP3 (LAME inside libsndfile); the bitrate is clamped to what the
    clip's MPEG version allows (16-160 kbps at 16-24 kHz, 32-320 at 32-48 kHz)."""
    samples, rate = decode(wav)
    if rate not in MP3_RATES:
        samples, rate = resample_samples(samples, rate, 24000), 24000
    out = io.BytesIO()
    sf.write(
        out,
        np.clip(samples, -1.0, 1.0),
        rate,
        format="MP3",
        subtype="MPEG_LAYER_III",
        compression_level=_mp3_compression(bitrate_kbps, rate),
        bitrate_mode="CONSTANT",
    )
    return out.getvalue()
